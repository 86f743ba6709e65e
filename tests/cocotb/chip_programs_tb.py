"""Tile programs in assembly, written with the msg.* instructions, on the whole chip over the byte link.

tests/test_chip_programs.py builds the chip (4 tiles, link="bytes") and runs all of these in one simulator
launch; every test resets the chip and talks to it through tests/cocotb/chip_host.py. Results are read back from
tile memory with READ_MEM after the tiles stop (ECALL) and compared with what a Python rule predicts.

`ping_pong`: neighbours (0 with 1, 2 with 3) and then pairs across the chip (0 with 2, 3 with 1: the ring path
3 -> 1 passes the host's stop and the padding), all pairs at once; every round's reply header and word is logged.
`fan_in`: tiles 1..3 send 2-word messages as fast as they can to tile 0, which spins between receives, so its
mailbox fills up (the senders are NACKed and retry); every message must arrive once, per sender in order.
`ring_token`: a token goes around all tiles for several laps; each tile transforms it and logs what it got.
`neighbour_latency`: tile 0 reads `cycle` just before `msg.send`, tile 1 reads it just after `msg.recv`
returns the message (the counter is chip-wide); the samples go back to pytest through `save_output`.
"""

from __future__ import annotations

import os
import statistics

import cocotb
from chip_host import ByteLine, ChipHost
from chip_tb import load, status

from tessera.firmware.asm import Program, assemble
from tessera.firmware.isa import Cause, TileState
from tessera.os.protocol import ReadMem, Run, SetPermissions
from tessera.sim.cocotb_runner import save_output

TILES = int(os.environ.get("TESSERA_CHIP_TILES", "4"))
MAILBOX_DEPTH = int(os.environ.get("TESSERA_CHIP_MAILBOX_DEPTH", "8"))
MASK32 = 0xFFFF_FFFF
READ_CHUNK = 32


def header(src: int, length: int, tag: int) -> int:
    """The word a receive returns (ReceivedHeader)."""
    return src | length << 8 | tag << 16


async def start_chip(dut) -> ChipHost:
    host = ChipHost(dut, ByteLine(dut))
    await host.start()
    return host


async def start_program(host: ChipHost, tile: int, program: Program, may_send_to: list[int]) -> None:
    await load(host, tile, program.words())
    await host.ok(SetPermissions(tile=tile, value=sum(1 << dest for dest in may_send_to)))


async def run_all(host: ChipHost, tiles: list[int]) -> None:
    for tile in tiles:
        await host.ok(Run(tile=tile))


async def wait_for_ecall(host: ChipHost, tile: int, max_polls: int = 400) -> None:
    """Poll the tile's status until it stops; it must stop with ECALL."""
    for _ in range(max_polls):
        state = await status(host, tile)
        if state.state == TileState.TRAPPED:
            assert state.cause == Cause.ECALL, f"tile {tile} stopped with {Cause(state.cause).name} at {state.pc:#x}"
            return
    raise TimeoutError(f"tile {tile} still {TileState(state.state).name} at pc {state.pc:#x}")


async def read_words(host: ChipHost, tile: int, address: int, count: int) -> list[int]:
    words: list[int] = []
    for start in range(0, count, READ_CHUNK):
        n = min(READ_CHUNK, count - start)
        words += (await host.ok(ReadMem(tile=tile, address=address + 4 * start, count=n))).words()
    return words


# ---------------------------------------------------------------------------------------------------------
# Programs

PING_ROUNDS = 12


def ping(partner: int, rounds: int) -> Program:
    """Send 0..rounds-1 (tag = the round) to `partner`; log each reply's header and word at `results`."""
    return assemble(f"""
        li s0, 0
        li s1, {rounds}
        la s2, results
        li s3, {partner}
    loop:
        msg.put s0
        msg.send s3, s0
        msg.recv a0
        msg.get a1
        sw a0, 0(s2)
        sw a1, 4(s2)
        addi s2, s2, 8
        addi s0, s0, 1
        blt s0, s1, loop
        ecall
    results:
        .zero {8 * rounds}
    """)


#: Answers every message to its sender with the same tag and word + 1 + (tile number << 10); never stops.
PONG = assemble("""
        csrr s4, mhartid
        slli s4, s4, 10
    loop:
        msg.recv a0
        msg.get a1
        add a1, a1, s4
        addi a1, a1, 1
        msg.put a1
        andi t0, a0, 127
        srli t1, a0, 16
        msg.send t0, t1
        j loop
    """)


def pong_reply(word: int, tile: int) -> int:
    return (word + 1 + (tile << 10)) & MASK32


@cocotb.test()
async def ping_pong(dut) -> None:
    host = await start_chip(dut)
    for pairs in ([(0, 1), (2, 3)], [(0, 2), (3, 1)]):  # neighbours, then across the chip
        for initiator, responder in pairs:
            await start_program(host, initiator, ping(responder, PING_ROUNDS), [responder])
            await start_program(host, responder, PONG, [initiator])
        # The node's message counters run from chip reset (a tile reset keeps them): compare what this phase adds.
        before = {responder: await status(host, responder) for _, responder in pairs}
        await run_all(host, [tile for pair in pairs for tile in reversed(pair)])
        for initiator, responder in pairs:
            program = ping(responder, PING_ROUNDS)
            await wait_for_ecall(host, initiator)
            log = await read_words(host, initiator, program.symbols["results"], 2 * PING_ROUNDS)
            expected = []
            for round_index in range(PING_ROUNDS):
                expected += [header(responder, 1, round_index), pong_reply(round_index, responder)]
            assert log == expected, f"{initiator} <-> {responder}: {log}"
            served = await status(host, responder)
            assert served.state == TileState.SLEEPING, f"responder {responder}: {served}"
            counted = (served.messages_in - before[responder].messages_in,
                       served.messages_out - before[responder].messages_out)
            assert counted == (PING_ROUNDS, PING_ROUNDS), f"responder {responder}: {served}"
        dut._log.info("ping-pong %s: %d rounds each, all replies right", pairs, PING_ROUNDS)


FAN_IN_MESSAGES = 8  # per sender
FAN_IN_SPIN = 60  # loop iterations tile 0 spends between receives


def fan_in_sender(sink: int, count: int) -> Program:
    """Send `count` 2-word messages (tile << 8 | seq, that ^ 0x5a5; tag = seq) to `sink`, as fast as it can."""
    return assemble(f"""
        csrr s4, mhartid
        slli s4, s4, 8
        li s0, 0
        li s1, {count}
        li s3, {sink}
    loop:
        or t0, s4, s0
        msg.put t0
        xori t1, t0, 0x5a5
        msg.put t1
        msg.send s3, s0
        addi s0, s0, 1
        blt s0, s1, loop
        ecall
    """)


def fan_in_sink(total: int, spin: int) -> Program:
    """Receive `total` messages, spinning before each; log (waiting count, header, word 0, word 1) at `log`."""
    return assemble(f"""
        li s0, 0
        li s1, {total}
        la s2, log
    loop:
        li t0, {spin}
    spin:
        addi t0, t0, -1
        bnez t0, spin
        msg.count t2
        msg.recv a0
        msg.get a1
        msg.get a2
        sw t2, 0(s2)
        sw a0, 4(s2)
        sw a1, 8(s2)
        sw a2, 12(s2)
        addi s2, s2, 16
        addi s0, s0, 1
        blt s0, s1, loop
        ecall
    log:
        .zero {16 * total}
    """)


@cocotb.test()
async def fan_in(dut) -> None:
    host = await start_chip(dut)
    senders = list(range(1, TILES))
    total = FAN_IN_MESSAGES * len(senders)
    sink = fan_in_sink(total, FAN_IN_SPIN)
    await start_program(host, 0, sink, [])
    for tile in senders:
        await start_program(host, tile, fan_in_sender(0, FAN_IN_MESSAGES), [0])
    await run_all(host, [0, *senders])
    for tile in [*senders, 0]:
        await wait_for_ecall(host, tile)
    log = await read_words(host, 0, sink.symbols["log"], 4 * total)
    entries = [tuple(log[i : i + 4]) for i in range(0, len(log), 4)]
    by_sender: dict[int, list[tuple[int, int, int]]] = {tile: [] for tile in senders}
    for _, head, word0, word1 in entries:
        by_sender.setdefault(head & 0x7F, []).append((head, word0, word1))
    for tile in senders:
        expected = []
        for seq in range(FAN_IN_MESSAGES):
            word0 = tile << 8 | seq
            expected.append((header(tile, 2, seq), word0, word0 ^ 0x5A5))
        assert by_sender[tile] == expected, f"from tile {tile}: {by_sender[tile]}"
        sent = await status(host, tile)
        assert sent.messages_out == FAN_IN_MESSAGES, sent
    waiting = [count for count, *_ in entries]
    # The busy receiver's mailbox was full at some point, so senders were turned back and had to retry.
    assert max(waiting) == MAILBOX_DEPTH, f"messages waiting before each receive: {waiting}"
    dut._log.info("fan-in: %d messages, waiting counts %s", total, waiting)


RING_LAPS = 5
RING_SEED = 7


def ring_node(tiles: int, laps: int, seed: int) -> Program:
    """Tile 0 starts the token (seed); every tile logs (header, token) of what it receives, passes on
    3 * token + tile + 1 to the next tile (tag = tokens it has seen) and stops after `laps` tokens."""
    return assemble(f"""
        csrr s4, mhartid
        addi s3, s4, 1
        li t0, {tiles}
        bne s3, t0, 1f
        li s3, 0
    1:
        li s0, 0
        li s1, {laps}
        la s2, log
        bnez s4, wait
        li a1, {seed}
        j pass
    wait:
        msg.recv a0
        msg.get a1
        sw a0, 0(s2)
        sw a1, 4(s2)
        addi s2, s2, 8
        addi s0, s0, 1
        bnez s4, pass
        bge s0, s1, done
    pass:
        slli t1, a1, 1
        add a1, a1, t1
        add a1, a1, s4
        addi a1, a1, 1
        msg.put a1
        msg.send s3, s0
        blt s0, s1, wait
    done:
        ecall
    log:
        .zero {8 * laps}
    """)


def ring_logs(tiles: int, laps: int, seed: int) -> dict[int, list[int]]:
    """What each tile's log holds after the token's laps (the rule of `ring_node`)."""
    logs: dict[int, list[int]] = {tile: [] for tile in range(tiles)}
    seen = dict.fromkeys(range(tiles), 0)
    holder, token = 0, seed
    while True:
        token = (3 * token + holder + 1) & MASK32
        tag, receiver = seen[holder], (holder + 1) % tiles
        logs[receiver] += [header(holder, 1, tag), token]
        seen[receiver] += 1
        if receiver == 0 and seen[0] == laps:
            return logs
        holder = receiver


@cocotb.test()
async def ring_token(dut) -> None:
    host = await start_chip(dut)
    program = ring_node(TILES, RING_LAPS, RING_SEED)
    for tile in range(TILES):
        await start_program(host, tile, program, [(tile + 1) % TILES])
    await run_all(host, list(range(TILES - 1, -1, -1)))  # tile 0, which starts the token, last
    expected = ring_logs(TILES, RING_LAPS, RING_SEED)
    for tile in range(TILES):
        await wait_for_ecall(host, tile)
        log = await read_words(host, tile, program.symbols["log"], 2 * RING_LAPS)
        assert log == expected[tile], f"tile {tile}: {log} (expected {expected[tile]})"
    dut._log.info("ring token: %d laps over %d tiles, every log right", RING_LAPS, TILES)


LATENCY_SAMPLES = 8

LATENCY_SENDER = assemble(f"""
        rdcycle t1
        rdcycle t2
        sub t2, t2, t1
        la s2, starts
        sw t2, -4(s2)
        li s0, 0
        li s1, {LATENCY_SAMPLES}
        li s3, 1
    loop:
        li t0, 40
    spin:
        addi t0, t0, -1
        bnez t0, spin
        msg.put s0
        rdcycle t1
        msg.send s3, s0
        sw t1, 0(s2)
        addi s2, s2, 4
        msg.recv a0
        addi s0, s0, 1
        blt s0, s1, loop
        ecall
    rdcycle_cost:
        .word 0
    starts:
        .zero {4 * LATENCY_SAMPLES}
    """)

LATENCY_RECEIVER = assemble(f"""
        li s0, 0
        li s1, {LATENCY_SAMPLES}
        la s2, ends
        li s3, 0
    loop:
        msg.recv a0
        rdcycle t1
        sw t1, 0(s2)
        addi s2, s2, 4
        msg.get a1
        msg.put a1
        msg.send s3, a1
        addi s0, s0, 1
        blt s0, s1, loop
        ecall
    ends:
        .zero {4 * LATENCY_SAMPLES}
    """)


@cocotb.test()
async def neighbour_latency(dut) -> None:
    """Cycles from `rdcycle` just before tile 0's `msg.send` (1 word) to `rdcycle` just after tile 1's
    `msg.recv` returns it, with tile 1 already waiting; tile 1's go-ahead back paces the samples."""
    host = await start_chip(dut)
    await start_program(host, 0, LATENCY_SENDER, [1])
    await start_program(host, 1, LATENCY_RECEIVER, [0])
    await run_all(host, [1, 0])
    for tile in (0, 1):
        await wait_for_ecall(host, tile)
    (rdcycle_cost,) = await read_words(host, 0, LATENCY_SENDER.symbols["rdcycle_cost"], 1)
    starts = await read_words(host, 0, LATENCY_SENDER.symbols["starts"], LATENCY_SAMPLES)
    ends = await read_words(host, 1, LATENCY_RECEIVER.symbols["ends"], LATENCY_SAMPLES)
    samples = [(end - start) & MASK32 for start, end in zip(starts, ends, strict=True)]
    assert all(0 < sample < 1000 for sample in samples), samples
    result = {
        "msg_latency_neighbour_cycles": statistics.median_low(samples),
        "samples": samples,
        "rdcycle_to_rdcycle_cycles": rdcycle_cost,
    }
    dut._log.info("neighbour latency: %s", result)
    save_output(result)

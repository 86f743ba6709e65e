"""cocotb tests of the whole chip (tests/test_chip.py builds it and runs these).

`fault_containment` (link="bytes", 4 tiles): tiles 1..3 run an echo service under traffic from the host while
tile 0 is made to stop with every cause in turn. For each cause: the DOWN message reaches the host with the right
tile, cause, pc and detail (BREAKPOINT, the debugger's stop, sends none); tile 0 restarts with a reloaded image
and serves the messages queued for it before the fault, but not the one it was handling; and in the end the echo
tiles' replies, message counters, state and memory are exactly what they are in a run without any fault.

`uart_link` (link="uart", 2 tiles): the protocol bit by bit on the UART pins through cocotbext-uart, every command
of docs/protocol.md at least once (checked at the end): IDENTIFY, WRITE_MEM/READ_MEM, HALT/RESET/RUN, STATUS with
its counters, the SET_* registers, SEND and the pushed reply with ACK_MESSAGE; a missed MESSAGE re-pushed by
REPUSH_MESSAGE and by a wrong ACK, and to a new host session; LINE_ERROR from a framing error inside a frame and
BAD_CRC; a DOWN message. Each fault_containment round also checks tile 0's counters (messages in/out, retired)
before and after the restart.
"""

from __future__ import annotations

import os

import cocotb
from cocotb.triggers import ClockCycles
from chip_host import ByteLine, ChipHost, UartLine

from tessera.firmware.asm import assemble
from tessera.firmware.isa import Cause, Opcode, TileState, encode_r
from tessera.hw.down_message import DOWN_TAG
from tessera.hw.noc_layouts import HOST_NODE, MessageOp
from tessera.hw.tile_node import FAULT_FUNCT3
from tessera.os.protocol import (
    AckMessage,
    ChipInfo,
    Feature,
    Halt,
    Identify,
    ReadMem,
    ReadStatus,
    RepushMessage,
    Reset,
    Run,
    Send,
    SetPermissions,
    SetSupervisor,
    SetWatchdog,
    Status,
    TileStatus,
    WriteMem,
    slip_encode,
)
from tessera.os.protocol import Opcode as ProtocolOpcode

T0, T1, T2, T3, T4, A0 = 5, 6, 7, 28, 29, 10
ECHO_TAG = 7
REQUEST_TAG = 1


def msg(op: MessageOp, rd: int = 0, rs1: int = 0, rs2: int = 0) -> str:
    return f".word {encode_r(Opcode.CUSTOM0, rd, op.funct3, rs1, rs2, op.funct7):#010x}"


def msg_fault(rs1: int) -> str:
    return f".word {encode_r(Opcode.CUSTOM0, 0, FAULT_FUNCT3, rs1, 0, 0):#010x}"


#: Answers every message with (first word + 1 + tile number) to the host, tag ECHO_TAG.
ECHO = f"""
loop:
    {msg(MessageOp.RECV, rd=T0)}
    {msg(MessageOp.GET, rd=T1)}
    csrr t4, mhartid
    addi t1, t1, 1
    add t1, t1, t4
    {msg(MessageOp.PUT, rs1=T1)}
    li t2, {HOST_NODE}
    li t3, {ECHO_TAG}
    {msg(MessageOp.SEND, rs1=T2, rs2=T3)}
    j loop
"""
#: Instructions of one pass through ECHO's loop (its receive included).
ECHO_LOOP_INSNS = 10

#: Per cause: the code after the victim's first receive, with `bad` on the instruction it stops at, and the pc
#: the stop reports relative to `bad` (None: an absolute pc given by the second element of the tuple).
FAULTS: dict[Cause, str] = {
    Cause.INSN_MISALIGNED: "li t0, 2\nbad: jalr x0, 0(t0)",
    Cause.FETCH_FAULT: "li t0, 0x400\nbad: jalr x0, 0(t0)",
    Cause.ILLEGAL_INSN: "bad: .word 0",
    Cause.BREAKPOINT: "bad: ebreak",
    Cause.LOAD_MISALIGNED: "bad: lw t1, 1(x0)",
    Cause.LOAD_FAULT: "bad: lw t1, 0x400(x0)",
    Cause.STORE_MISALIGNED: "bad: sw t1, 2(x0)",
    Cause.STORE_FAULT: "bad: sw t1, 0x400(x0)",
    Cause.ECALL: "bad: ecall",
    Cause.SEND_DENIED: f"li t1, 55\n{msg(MessageOp.PUT, rs1=T1)}\nli t2, 2\nbad: {msg(MessageOp.SEND, rs1=T2)}",
    Cause.MESSAGE_FAULT: f"{msg(MessageOp.GET, rd=T1)}\nbad: {msg(MessageOp.GET, rd=T1)}",
    Cause.WATCHDOG: "bad: j bad",
    Cause.ASSERTION: f"li a0, 3\nbad: {msg_fault(A0)}",
}


def expected_pc(cause: Cause, bad: int) -> int:
    if cause is Cause.FETCH_FAULT:
        return 0x400  # the fetch of the bad target faults
    if cause in (Cause.ECALL, Cause.BREAKPOINT):
        return bad + 4  # resumable: pc is past the instruction
    return bad


async def load(host: ChipHost, tile: int, words: list[int]) -> None:
    await host.ok(Halt(tile=tile))
    await host.ok(Reset(tile=tile))
    for start in range(0, len(words), 32):
        await host.ok(WriteMem(tile=tile, address=4 * start, words=tuple(words[start : start + 32])))


async def status(host: ChipHost, tile: int) -> TileStatus:
    return TileStatus.from_words((await host.ok(ReadStatus(tile=tile))).words())


async def configure(host: ChipHost, tile: int, tiles: int, watchdog: int) -> None:
    await host.ok(SetPermissions(tile=tile, value=1 << tiles))  # the host only
    await host.ok(SetSupervisor(tile=tile, value=HOST_NODE))
    await host.ok(SetWatchdog(tile=tile, value=watchdog))


def take(inbox: list, source: int, tag: int) -> list[tuple[int, ...]]:
    """Remove and return the words of every inbox message from `source` with `tag`, in arrival order."""
    found = [words for src, t, words in inbox if src == source and t == tag]
    inbox[:] = [entry for entry in inbox if not (entry[0] == source and entry[1] == tag)]
    return found


@cocotb.test()
async def fault_containment(dut) -> None:
    tiles = int(os.environ["TESSERA_CHIP_TILES"])
    host = ChipHost(dut, ByteLine(dut))
    await host.start()
    echo = assemble(ECHO).words()
    workers = range(1, tiles)
    sent: dict[int, list[int]] = {tile: [] for tile in workers}
    for tile in workers:
        await load(host, tile, echo)
        await configure(host, tile, tiles, watchdog=600)  # waiting in a receive never trips it
        await host.ok(Run(tile=tile))

    echoed: dict[int, list[int]] = {tile: [] for tile in workers}
    for round_index, (cause, body) in enumerate(FAULTS.items()):
        program = assemble(f"{msg(MessageOp.RECV, rd=T0)}\n{body}\n")
        await load(host, 0, program.words())
        await configure(host, 0, tiles, watchdog=1000 if cause is Cause.WATCHDOG else 0)
        await host.ok(Run(tile=0))
        handled, queued = 1000 * round_index, [1000 * round_index + 1, 1000 * round_index + 2]
        for value in [handled, *queued]:
            await host.ok(Send(tile=0, tag=REQUEST_TAG, words=(value,)))
        for tile in workers:
            value = 10 * round_index + tile
            sent[tile].append(value)
            await host.ok(Send(tile=tile, tag=REQUEST_TAG, words=(value,)))

        pc = expected_pc(cause, program.symbols["bad"])
        if cause is Cause.BREAKPOINT:
            await ClockCycles(dut.clk, 3000)
            await status(host, 0)  # a command: takes in whatever the chip pushed meanwhile
            assert not take(host.inbox, 0, DOWN_TAG), "a breakpoint sent a DOWN message"
        else:
            while not any(src == 0 and tag == DOWN_TAG for src, tag, _ in host.inbox):
                await host.wait_messages(len(host.inbox) + 1)
            downs = take(host.inbox, 0, DOWN_TAG)
            assert downs == [(cause, pc, 3 if cause is Cause.ASSERTION else 0)], f"{cause.name}: DOWN {downs}"
        stopped = await status(host, 0)
        assert (stopped.state, stopped.cause, stopped.pc) == (TileState.TRAPPED, cause, pc), f"{cause.name}: {stopped}"
        # The counters tell what this run of the program did: one message opened, none sent, and every
        # instruction before `bad` retired (plus the jump itself for a fetch fault, the ECALL / EBREAK itself).
        counted = (stopped.messages_in, stopped.messages_out)
        assert counted == (1, 0), f"{cause.name}: {stopped}"
        if cause is not Cause.WATCHDOG:  # its `bad` loops until the watchdog expires
            ran = program.symbols["bad"] // 4 + (cause in (Cause.FETCH_FAULT, Cause.ECALL, Cause.BREAKPOINT))
            assert stopped.retired == ran, f"{cause.name}: {stopped.retired} instructions retired, expected {ran}"

        # Restart with a reloaded image: the queued messages are served, the handled one is not redelivered.
        await host.ok(Reset(tile=0))
        await host.ok(WriteMem(tile=0, address=0, words=tuple(echo)))
        await host.ok(Run(tile=0))
        while len([1 for src, tag, _ in host.inbox if src == 0 and tag == ECHO_TAG]) < len(queued):
            await host.wait_messages(len(host.inbox) + 1)
        await ClockCycles(dut.clk, 2000)
        replies = take(host.inbox, 0, ECHO_TAG)
        assert replies == [(value + 1,) for value in queued], f"{cause.name}: tile 0 after restart sent {replies}"
        restarted = await status(host, 0)  # RESET restarted the counters with the program
        counts = (restarted.messages_in, restarted.messages_out, restarted.retired)
        assert counts == (len(queued), len(queued), len(queued) * ECHO_LOOP_INSNS), f"{cause.name}: {restarted}"
        for tile in workers:
            echoed[tile] += [words[0] for words in take(host.inbox, tile, ECHO_TAG)]
        assert not host.inbox, f"unexpected messages {host.inbox}"
        dut._log.info("%s: stopped at pc %#x, restart served %d queued messages", cause.name, pc, len(queued))

    for tile in workers:
        while len(echoed[tile]) < len(sent[tile]):
            await host.wait_messages(1)
            echoed[tile] += [words[0] for words in take(host.inbox, tile, ECHO_TAG)]
        # Exactly the fault-free run: every request answered once, in order, by the echo's rule.
        assert echoed[tile] == [value + 1 + tile for value in sent[tile]], f"tile {tile}: {echoed[tile]}"
        state = await status(host, tile)
        assert state.state in (TileState.RUNNING, TileState.SLEEPING), f"tile {tile}: {state}"
        assert (state.messages_in, state.messages_out) == (len(sent[tile]), len(sent[tile])), f"tile {tile}: {state}"
        await host.ok(Halt(tile=tile))
        memory = (await host.ok(ReadMem(tile=tile, address=0, count=len(echo)))).words()
        assert list(memory) == echo, f"tile {tile}: memory changed"


@cocotb.test()
async def uart_link(dut) -> None:
    """Every command of docs/protocol.md, its pushed MESSAGE frames and the link's repairs, bit by bit on the pins."""
    tiles = int(os.environ["TESSERA_CHIP_TILES"])
    baud = int(os.environ["TESSERA_CHIP_BAUD"])
    line = UartLine(dut, baud)
    host = ChipHost(dut, line)
    await host.start()
    info = ChipInfo.from_bytes((await host.ok(Identify())).payload)
    assert info.tile_count == tiles and info.host_node == HOST_NODE, info
    assert info.features & Feature.INSTRET and info.features & Feature.MESSAGE_COUNTERS, info

    # Memory, configuration, RUN, SEND and a pushed reply (acknowledged by its number); counters of that run.
    echo = assemble(ECHO).words()
    await load(host, 1, echo)  # HALT, RESET, WRITE_MEM
    assert list((await host.ok(ReadMem(tile=1, address=0, count=len(echo)))).words()) == echo
    await configure(host, 1, tiles, watchdog=0)  # SET_PERMISSIONS, SET_SUPERVISOR, SET_WATCHDOG
    await host.ok(Run(tile=1))
    await host.ok(Send(tile=1, tag=REQUEST_TAG, words=(41, 5, 6)))
    inbox = await host.wait_messages(1)  # ACK_MESSAGE
    assert inbox == [(1, ECHO_TAG, (41 + 1 + 1,))], inbox
    host.inbox.clear()
    served = await status(host, 1)
    assert served.state == TileState.SLEEPING, served  # waiting in its next receive
    # One message opened and one sent; one pass of the echo loop retired (the waiting receive has not).
    assert (served.messages_in, served.messages_out, served.retired) == (1, 1, ECHO_LOOP_INSNS), served

    # A message the host misses is pushed again until acknowledged by its own number, also to a new session.
    host.acknowledge = False
    await host.ok(Send(tile=1, tag=REQUEST_TAG, words=(100,)))
    first = (await host.wait_held(1))[0]
    assert first.message() == (1, ECHO_TAG, (102,)), first
    await host.ok(RepushMessage())
    assert (await host.wait_held(2))[1] == first  # the same frame, same push number
    await host.ok(AckMessage(push_seq=(first.seq + 7) % 256))  # another number frees nothing: pushed again
    assert (await host.wait_held(3))[2] == first
    await host.ok(Send(tile=1, tag=REQUEST_TAG, words=(200,)))
    await ClockCycles(dut.clk, 20_000)
    assert len(host.held) == 3, host.held  # the second reply waits behind the first

    first_host_opcodes = host.sent_opcodes
    session = ChipHost(dut, line)  # a new host on the same line, as after a host restart: the chip is not reset
    await session.ok(Identify())
    await session.ok(RepushMessage())  # the new host does not know the push number: it asks for a re-push
    await session.wait_messages(2)
    assert session.inbox == [(1, ECHO_TAG, (102,)), (1, ECHO_TAG, (202,))], session.inbox
    host = session

    # Link errors at bit level: a framing error inside a frame, a bad CRC; the next good frame works.
    broken = Run(tile=1).frame(0x42)
    line.write(broken[:3])
    await line.write_bad_stop_bit(0x55)
    reply = await host.exchange(broken[3:], 0x42)
    assert (reply.status, reply.opcode) == (Status.LINE_ERROR, ProtocolOpcode.RUN), reply
    damaged = bytearray(Halt(tile=1).body(0x43))
    damaged[-1] ^= 0x10
    reply = await host.exchange(slip_encode(bytes(damaged)), 0x43)
    assert reply.status == Status.BAD_CRC, reply

    # HALT stops a running tile; STATUS shows it; RESET clears pc and counters.
    await host.ok(Halt(tile=1))
    halted = await status(host, 1)
    assert (halted.state, halted.messages_in) == (TileState.HALTED, 3), halted
    await host.ok(Reset(tile=1))
    reset = await status(host, 1)
    assert (reset.state, reset.pc, reset.retired, reset.messages_in, reset.messages_out) == (TileState.HALTED, 0, 0, 0, 0)

    # A fault becomes a DOWN message pushed to the host.
    program = assemble(f"li a0, 4\nbad: {msg_fault(A0)}\n")
    await load(host, 0, program.words())
    await configure(host, 0, tiles, watchdog=0)
    await host.ok(Run(tile=0))
    inbox = await host.wait_messages(3)
    assert inbox[2] == (0, DOWN_TAG, (Cause.ASSERTION, program.symbols["bad"], 4)), inbox
    stopped = await status(host, 0)
    assert (stopped.state, stopped.cause) == (TileState.TRAPPED, Cause.ASSERTION), stopped

    commands = {op for op in ProtocolOpcode if op is not ProtocolOpcode.MESSAGE}
    assert commands <= first_host_opcodes | host.sent_opcodes, commands - first_host_opcodes - host.sent_opcodes

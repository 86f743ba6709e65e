"""Host link benchmark (`make bench-link`): prints `name: value` lines.

The link runs at LINK_BAUD = 3 Mbaud from a 24 MHz chip clock (UART divisor 8: 80 clock cycles per 8N1 byte).

- link_baud: that rate (hw/host_link.uart_divisor accepts it at CLOCK_HZ).
- host_echo_roundtrip_us: host -> tile -> host with one word. Measured in the Amaranth simulator on an 8-tile
  TesseraChip(link="bytes"): tile 1 runs an echo loop; the host's SEND frame goes into `rx` one byte per cycle,
  and every byte the chip puts on `tx` is stamped with its cycle. UART time is then added byte by byte: the chip
  sees the SEND frame's last byte only after all its bytes crossed the line (10 bit times each), and each byte the
  chip sends starts when the chip produced it (cycles after that last byte, as measured) or when the line is free,
  whichever is later. The round trip ends with the last stop bit of the pushed MESSAGE frame that carries the
  echo (the SEND's own reply goes first on the same line and is counted).
- image_load_s: every tile's whole memory written and read back (os/chip.py `Chip.load`, random data) at 3 Mbaud.
  The protocol bytes are counted by running the real `Chip` client against the bridge's reference model
  (sim/bridge_model.py); each command costs its request and reply bytes at 10 bits each plus the chip's
  turnaround (last request byte in -> first reply byte out) as measured on the RTL for WRITE_MEM and READ_MEM
  runs of max_words words. Commands are sequential: the client waits for each reply.
- down_latency_cycles: on the same RTL, tile 0 executes an illegal instruction; cycles from the tile's state
  becoming TRAPPED to the DOWN message's first flit leaving tile 0's node on the ring (`ring_out`, a DATA slot
  with source 0).
- bridge_lcs: HostLink (UART receiver, transmitter and host bridge) packed for the iCE40UP5K
  (boards/synth.synthesize, pack_only=True).
Usage: python -m tessera.sim.bench_link [--skip-synth]
"""

from __future__ import annotations

import argparse
import random
from collections import deque
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from tessera.boards.synth import synthesize
from tessera.firmware.asm import assemble
from tessera.firmware.isa import Opcode, TileState, encode_r
from tessera.hw.chip import TesseraChip
from tessera.hw.host_link import HostLink, uart_divisor
from tessera.hw.noc_layouts import HOST_NODE, NODE_BITS, MessageOp, SlotKind
from tessera.os.chip import Chip
from tessera.os.link import Link
from tessera.os.protocol import (
    ChipInfo,
    Command,
    ReadMem,
    Reply,
    Run,
    Send,
    SetPermissions,
    SetSupervisor,
    SlipDecoder,
    WriteMem,
    parse_reply,
)
from tessera.sim.bridge_model import BridgeModel, FakeNetwork, FakeTileArray

LINK_BAUD = 3_000_000
CLOCK_HZ = 24_000_000
TILES = 8
BITS_PER_BYTE = 10  # 8N1: start, 8 data, stop
ECHO_TILE = 1
FAULT_TILE = 0
SIM_TIMEOUT_CYCLES = 20_000

T0, T1, T2, T3 = 5, 6, 7, 28


def _msg(op: MessageOp, rd: int = 0, rs1: int = 0, rs2: int = 0) -> str:
    return f".word {encode_r(Opcode.CUSTOM0, rd, op.funct3, rs1, rs2, op.funct7):#010x}"


#: Receives a message and sends its first word back to the host, forever.
ECHO = f"""
loop:
    {_msg(MessageOp.RECV, rd=T0)}
    {_msg(MessageOp.GET, rd=T1)}
    {_msg(MessageOp.PUT, rs1=T1)}
    li t2, {HOST_NODE}
    li t3, 1
    {_msg(MessageOp.SEND, rs1=T2, rs2=T3)}
    j loop
"""
#: One good instruction, then an illegal one (all-zero word).
FAULTING = "nop\n.word 0\n"


def cycles_per_byte() -> int:
    return uart_divisor(CLOCK_HZ, LINK_BAUD) * BITS_PER_BYTE


@dataclass
class Exchange:
    """One command on the byte-level RTL: its frame, the cycle its last byte went in, and every byte the chip
    sent until the reply was complete, with the cycle it appeared."""

    frame: bytes
    last_in: int
    out: list[tuple[int, int]] = field(default_factory=list)

    def turnaround(self) -> int:
        return self.out[0][0] - self.last_in

    def uart_end(self, upto: int) -> int:
        """Cycles from the first request bit to the end of output byte `upto` (inclusive) on a real UART."""
        per_byte = cycles_per_byte()
        chip_sees = len(self.frame) * per_byte
        line_free = 0
        for cycle, _ in self.out[: upto + 1]:
            line_free = max(chip_sees + cycle - self.last_in, line_free) + per_byte
        return line_free


@dataclass
class RtlFigures:
    info: ChipInfo
    write_turnaround: int = 0
    read_turnaround: int = 0
    echo_roundtrip_cycles: int = 0
    down_latency: int = 0


def measure_rtl() -> RtlFigures:
    chip = TesseraChip(tiles=TILES, link="bytes", clock_hz=CLOCK_HZ, baud=LINK_BAUD)
    figures = RtlFigures(chip.info)
    max_words = chip.info.max_words

    async def testbench(ctx) -> None:
        cycle = 0
        seq = 0
        tx_log: deque[tuple[int, int]] = deque()
        ctx.set(chip.tx.ready, 1)

        # The DOWN watch, armed just before tile 0 is started: the tile traps and its DOWN can leave while the RUN
        # command's reply is still on its way, so every cycle is watched, not only those after the reply.
        node = chip.nodes[FAULT_TILE]
        node_mask = (1 << NODE_BITS) - 1
        watching_down = False
        trapped_at: int | None = None
        down_at: int | None = None

        def watch_down() -> None:
            nonlocal trapped_at, down_at
            if trapped_at is None and ctx.get(node.control.state) == TileState.TRAPPED:
                trapped_at = cycle
            source = (ctx.get(node.ring_out.data) >> NODE_BITS) & node_mask
            if trapped_at is not None and ctx.get(node.ring_out.kind) == SlotKind.DATA and source == FAULT_TILE:
                down_at = cycle

        async def step() -> None:
            nonlocal cycle
            if ctx.get(chip.tx.valid):
                tx_log.append((cycle, ctx.get(chip.tx.payload)))
            if watching_down and down_at is None:
                watch_down()
            await ctx.tick()
            cycle += 1

        async def exchange(command: Command, want_push: bool = False) -> tuple[Exchange, list[Reply]]:
            nonlocal seq
            seq = (seq + 1) % 256
            tx_log.clear()
            frame = command.frame(seq)
            for byte in frame:
                ctx.set(chip.rx.payload, byte)
                ctx.set(chip.rx.valid, 1)
                while True:
                    taken = ctx.get(chip.rx.ready)
                    await step()
                    if taken:
                        break
            ctx.set(chip.rx.valid, 0)
            record = Exchange(frame, cycle)
            decoder = SlipDecoder()
            replies: list[Reply] = []
            start = cycle
            while not (any(r.seq == seq and not r.is_message for r in replies)
                       and (not want_push or any(r.is_message for r in replies))):
                await step()
                while tx_log:
                    stamped = tx_log.popleft()
                    record.out.append(stamped)
                    replies += [parse_reply(f.body) for f in decoder.feed(bytes([stamped[1]]))]
                if cycle - start > SIM_TIMEOUT_CYCLES:
                    raise RuntimeError(f"no reply to {command} within {SIM_TIMEOUT_CYCLES} cycles")
            return record, replies

        # Turnaround of full WRITE_MEM / READ_MEM runs (tile 2, idle and halted after reset).
        data = tuple(random.Random(3).getrandbits(32) for _ in range(max_words))
        figures.write_turnaround = (await exchange(WriteMem(tile=2, address=0, words=data)))[0].turnaround()
        read, replies = await exchange(ReadMem(tile=2, address=0, count=max_words))
        if replies[-1].words() != data:
            raise RuntimeError("READ_MEM did not return what WRITE_MEM wrote")
        figures.read_turnaround = read.turnaround()

        # Echo round trip on tile 1.
        words = assemble(ECHO).words()
        await exchange(WriteMem(tile=ECHO_TILE, address=0, words=tuple(words)))
        await exchange(SetPermissions(tile=ECHO_TILE, value=1 << TILES))
        await exchange(Run(tile=ECHO_TILE))
        for _ in range(50):  # let it reach its receive
            await step()
        echo, replies = await exchange(Send(tile=ECHO_TILE, tag=5, words=(41,)), want_push=True)
        push = next(r for r in replies if r.is_message)
        if push.message() != (ECHO_TILE, 1, (41,)):
            raise RuntimeError(f"echo answered {push.message()}")
        figures.echo_roundtrip_cycles = echo.uart_end(len(echo.out) - 1)

        # DOWN latency on tile 0.
        await exchange(WriteMem(tile=FAULT_TILE, address=0, words=tuple(assemble(FAULTING).words())))
        await exchange(SetSupervisor(tile=FAULT_TILE, value=HOST_NODE))
        watching_down = True
        await exchange(Run(tile=FAULT_TILE))
        for _ in range(SIM_TIMEOUT_CYCLES):
            if down_at is not None:
                assert trapped_at is not None
                figures.down_latency = down_at - trapped_at
                return
            await step()
        raise RuntimeError("no DOWN message left tile 0")

    simulator = Simulator(chip)
    simulator.add_clock(1 / CLOCK_HZ)
    simulator.add_testbench(testbench)
    simulator.run()
    return figures


class ModelLink(Link):
    """A link to the bridge's reference model that records each command's request and reply sizes in bytes."""

    def __init__(self, info: ChipInfo) -> None:
        super().__init__("model:bridge")
        self._model = BridgeModel(info, FakeTileArray(info.tile_count, (1 << info.mem_log2) // 4), FakeNetwork())
        self._incoming = b""
        self.exchanges: list[tuple[int, int, int]] = []  # (opcode, request bytes, reply bytes)

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        frames = list(SlipDecoder().feed(data))
        if len(frames) != 1:
            raise RuntimeError(f"expected one frame per write from the client, got {len(frames)}")
        reply = self._model.feed(data)
        self.exchanges.append((frames[0].body[0] & 0x1F, len(data), len(reply)))
        self._incoming += reply

    def _read(self, timeout: float | None) -> bytes:
        data, self._incoming = self._incoming, b""
        return data


def image_load_seconds(figures: RtlFigures) -> float:
    link = ModelLink(figures.info).open()
    client = Chip(link)
    link.exchanges.clear()  # IDENTIFY at connection is not part of the load
    rng = random.Random(7)
    mem_bytes = 1 << figures.info.mem_log2
    for tile in range(TILES):
        client.load(tile, rng.randbytes(mem_bytes))
    turnaround = {WriteMem.opcode: figures.write_turnaround, ReadMem.opcode: figures.read_turnaround}
    unknown = {opcode for opcode, _, _ in link.exchanges} - set(turnaround)
    if unknown:
        raise RuntimeError(f"the load sent commands without a measured turnaround: opcodes {sorted(unknown)}")
    line_bits = sum(request + reply for _, request, reply in link.exchanges) * BITS_PER_BYTE
    chip_cycles = sum(turnaround[opcode] for opcode, _, _ in link.exchanges)
    return line_bits / LINK_BAUD + chip_cycles / CLOCK_HZ


def bridge_cells(info: ChipInfo) -> int:
    return synthesize(HostLink(info=info, baud=LINK_BAUD), "bench_host_link", pack_only=True).logic_cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-synth", action="store_true")
    args = parser.parse_args()
    print(f"link_baud: {CLOCK_HZ / uart_divisor(CLOCK_HZ, LINK_BAUD):.0f}")
    figures = measure_rtl()
    print(f"host_echo_roundtrip_us: {figures.echo_roundtrip_cycles / CLOCK_HZ * 1e6:.2f}")
    print(f"image_load_s: {image_load_seconds(figures):.3f}")
    print(f"down_latency_cycles: {figures.down_latency}")
    if not args.skip_synth:
        print(f"bridge_lcs: {bridge_cells(figures.info)}")


if __name__ == "__main__":
    main()

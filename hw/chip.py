"""The Tessera chip: tile nodes and the host node on one slotted ring, the host bridge on the host node.

docs/architecture.md has the picture. The ring is wired as `tessera.hw.network.RingNetwork` shows: tiles at ring
positions 0..T-1, the host's message unit at position T, padded to whole slots (`network.connect_ring`). A chip with
LEDs or buttons puts the I/O node (hw/io_node.py) at ring position and address T and the host's unit after it.
"""

from __future__ import annotations

from typing import Literal

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tessera.hw.core import check_mem_bytes
from tessera.hw.core_bit import COUNTER_STREAM_MEMBERS, FRAME_LEAD
from tessera.hw.host_bridge import HostBridge
from tessera.hw.host_link import HostLink
from tessera.hw.io_node import MAX_PINS, IoNode, debounce_bits, default_debounce_cycles, io_address
from tessera.hw.message_unit import MessageUnit
from tessera.hw.network import connect_ring, phase_at_reset
from tessera.hw.noc_layouts import HOST_NODE, MAX_TILES, MAX_WORDS, ring_length
from tessera.hw.spram_bank import SpramBank, spram_bank_tiles, spram_tile_bytes
from tessera.hw.tile_fanout import TileFanout
from tessera.hw.tile import core_class
from tessera.hw.tile_node import TileNode, decode_node_inputs
from tessera.os.protocol import MAX_WORDS_LIMIT, PROTOCOL_VERSION, ChipInfo, ConfigRegister, Feature, StatusWord

Link = Literal["uart", "bytes"]
#: The chip's nominal clock unless told otherwise (the iCE40 boards' 12 MHz oscillator).
DEFAULT_CLOCK_HZ = 12_000_000
LINKS: tuple[Link, ...] = ("uart", "bytes")
TileMemory = Literal["block_ram", "spram"]
TILE_MEMORIES: tuple[TileMemory, ...] = ("block_ram", "spram")

FEATURES = (
    Feature.INSTRET
    | Feature.MESSAGE_COUNTERS
    | Feature.WATCHDOG
    | Feature.SEND_PERMISSIONS
    | Feature.SUPERVISOR
    | Feature.MESSAGE_UNIT
)
#: The features that the per-tile counters provide (`TesseraChip(counters=False)` has neither).
COUNTER_FEATURES = Feature.INSTRET | Feature.MESSAGE_COUNTERS


def cycle_counter_stream(m: Module, cycle: Signal) -> tuple[Signal, Signal, Signal]:
    """Add to `m` the bit-serial cores' counter stream of the chip's cycle counter `cycle` (64 bits, counting from 0
    at reset); return (`bit`, `start`, `high`) as `tessera.hw.core_bit.counter_stream(m, cycle)` would for it (from
    the first announced frame on).

    counter_stream's frame k (cycles 64k..64k+63) carries 64k - 1, a value that grows by exactly 64 per frame. It
    therefore circulates, least significant bit first, through a 64 x 1-bit block RAM (bit i of the frame's value at
    address i, i = `cycle` mod 64, the frame's own index), and a serial adder adds 64 to each bit as it passes: no
    64-bit snapshot multiplexer and no 64 flip-flops (a flip-flop fed by a flip-flop takes a logic cell of its own).
    Frame 0 holds -1 (all ones, never announced): the RAM's content is ignored until frame 0 has written it.
    """
    index = cycle[:6]
    ring = Memory(shape=1, depth=64, init=[], attrs={"no_rw_check": 1, "ram_style": "block"})
    m.submodules.counter_ring = ring
    write = ring.write_port()
    # `bit` (bit `index` of the frame's value) is a flip-flop, as the ring's last stage was: the block RAM's slower
    # clock-to-output stays out of the cores. So the RAM is read two addresses ahead; the address written (index)
    # is never one being read (index + 2): `no_rw_check` (as in `tessera.hw.ring_delay.RingDelay`).
    read = ring.read_port(domain="sync")
    bit = Signal(init=1)
    primed = Signal()  # the RAM holds the running value: its reads count from frame 1's bit 0 on
    carry = Signal()  # carry into `bit` while adding 64
    m.d.sync += bit.eq(read.data | ~primed)
    with m.If(index == 5):
        m.d.sync += carry.eq(1)
    with m.Elif(index == 63):
        m.d.sync += carry.eq(0)
    with m.Else():
        m.d.sync += carry.eq(carry & bit)
    with m.If(index == 62):  # the read now (address 0) is bit 0 of frame 1, written in frame 0
        m.d.sync += primed.eq(1)
    m.d.comb += [
        read.addr.eq(index + 2),
        write.en.eq(1),
        write.addr.eq(index),
        write.data.eq(bit ^ carry),
    ]
    start = Signal()
    high = Signal()
    m.d.comb += [start.eq(primed & (index[0:5] == 32 - FRAME_LEAD)), high.eq(~index[5])]
    return bit, start, high


class TesseraChip(wiring.Component):
    """Parameters: `tiles` (1..126; 0..125 with the I/O node: a chip of no tiles is the host link and the I/O
    node, for a board too small for a tile), `mem_bytes` (per tile, a power of two >= 1024), `mailbox_depth`, `link`
    ("uart": pins `uart_rx`/`uart_tx`; "bytes": byte streams `rx`/`tx` for the virtual board), `clock_hz`, `baud`
    (UART rate; the divisor is round(clock_hz / baud)), `max_words` (words per WRITE_MEM/READ_MEM frame),
    `retry_delay` (network NACK back-off), `counter_bits` (per-tile message counters), `counters` (False: no
    per-tile retired/messages counters; IDENTIFY then leaves out INSTRET and MESSAGE_COUNTERS and STATUS words
    4..6 read 0), `core` ("parallel",
    "serial" or "bit", see `tessera.hw.tile.CORES`; with "bit" one counter stream serves every tile),
    `leds`/`buttons` (0..8 each; either above 0 adds the I/O node and the ports `leds: Out(leds)` /
    `buttons: In(buttons)`), `debounce_cycles` (the buttons' debounce interval, a power of two; default
    `default_debounce_cycles(clock_hz)`, about 5 ms), `separate_staging` (False: every node's mailbox keeps its
    staged message in its queue's block RAM, one EBR per node instead of two, for a few logic cells: see
    `tessera.hw.mailbox.Mailbox`), `tile_memory` ("block_ram": each tile's memory is a block RAM of its own;
    "spram": the tiles' memories are slices of the UP5K's single-port RAM, `tessera.hw.spram_bank`, bit core only,
    at most `spram_tile_bytes(tiles)` per tile; elaborated without an UltraPlus platform, a behavioural bank).

    `info` is what IDENTIFY reports. The chip-wide 64-bit cycle counter starts at 0 on reset.

    With the I/O node, every message unit is built for `tiles + 1` tiles (the node is "tile" T to them), and the
    host's PERMISSIONS writes are translated: the host keeps its layout (bit T = the host) and bit T + 1 allows
    sends to the node (`tessera.hw.io_node.io_permission_bit`).
    """

    def __init__(
        self,
        *,
        tiles: int = 8,
        mem_bytes: int = 4096,
        mailbox_depth: int = 8,
        link: Link = "uart",
        clock_hz: int = DEFAULT_CLOCK_HZ,
        baud: int = 115_200,
        max_words: int = 32,
        retry_delay: int = 32,
        counter_bits: int = 16,
        counters: bool = True,
        core: str = "parallel",
        leds: int = 0,
        buttons: int = 0,
        debounce_cycles: int | None = None,
        separate_staging: bool = True,
        tile_memory: TileMemory = "block_ram",
    ) -> None:
        has_io = leds > 0 or buttons > 0
        most_tiles = MAX_TILES - 1 - has_io  # the I/O node takes an address below the host's
        if not 1 - has_io <= tiles <= most_tiles:
            raise ValueError(
                f"tiles={tiles}: a chip {'with I/O ' if has_io else ''}has {1 - has_io}..{most_tiles} tiles"
                + ("" if has_io else " (none only with LEDs or buttons: the host link alone would reach nothing)")
            )
        for name, count in (("leds", leds), ("buttons", buttons)):
            if not 0 <= count <= MAX_PINS:
                raise ValueError(f"{name}={count}: expected 0..{MAX_PINS}")
        check_mem_bytes(mem_bytes)
        core_class(core)  # refuses an unknown core name before anything is built
        if tile_memory not in TILE_MEMORIES:
            raise ValueError(f"tile_memory={tile_memory!r}: expected one of {', '.join(TILE_MEMORIES)}")
        if tile_memory == "spram" and tiles:
            if core != "bit":
                raise ValueError("tile_memory='spram' needs core='bit' (the only core that waits for its memory)")
            if mem_bytes > spram_tile_bytes(tiles):
                raise ValueError(
                    f"mem_bytes={mem_bytes}: {tiles} tiles in SPRAM get at most {spram_tile_bytes(tiles)} bytes each"
                )
        if link not in LINKS:
            raise ValueError(f"link={link!r}: expected one of {', '.join(LINKS)}")
        if not 1 <= max_words <= MAX_WORDS_LIMIT:
            raise ValueError(f"max_words={max_words}: expected 1..{MAX_WORDS_LIMIT}")
        self._debounce_bits = debounce_bits(debounce_cycles or default_debounce_cycles(clock_hz))
        self._tiles = tiles
        self._mem_bytes = mem_bytes
        self._mailbox_depth = mailbox_depth
        self._link = link
        self._baud = baud
        self._retry_delay = retry_delay
        self._counter_bits = counter_bits
        self._counters = counters
        self._core = core
        self._leds = leds
        self._buttons = buttons
        self._separate_staging = separate_staging
        self._tile_memory = tile_memory
        #: Tiles as the message units count them: the I/O node is one more.
        self._unit_tiles = tiles + has_io
        self._info = ChipInfo(
            protocol_version=PROTOCOL_VERSION,
            tile_count=tiles,
            mem_log2=mem_bytes.bit_length() - 1,
            max_words=max_words,
            message_words=MAX_WORDS,
            mesh_width=self._unit_tiles + 1,
            mesh_height=1,
            mailbox_depth=mailbox_depth,
            host_node=HOST_NODE,
            # The tiles' features; a chip without tiles has none of them, only its I/O node.
            features=(Feature(0) if not tiles else FEATURES if counters else FEATURES & ~COUNTER_FEATURES)
            | (Feature.IO_NODE if has_io else Feature(0)),
            clock_hz=clock_hz,
        )
        if link == "uart":
            self._host = HostLink(info=self._info, baud=baud)
            members = {"uart_rx": In(1, init=1), "uart_tx": Out(1, init=1)}
        else:
            self._host = HostBridge(info=self._info)
            members = {"rx": In(stream.Signature(unsigned(8))), "tx": Out(stream.Signature(unsigned(8)))}
        if leds:
            members["leds"] = Out(leds)
        if buttons:
            members["buttons"] = In(buttons)
        super().__init__(members)
        #: The tile nodes in ring order (public so that tests can reach their tiles).
        self.nodes = [
            TileNode(
                tile_id=index,
                num_tiles=self._unit_tiles,
                mem_bytes=mem_bytes,
                phase_at_reset=phase_at_reset(index),
                mailbox_depth=mailbox_depth,
                retry_delay=retry_delay,
                counter_bits=counter_bits,
                counters=counters,
                core=core,
                shared_counter_stream=core == "bit",  # one stream (elaborate) serves every tile
                shared_decode=True,  # decoded once in elaborate
                separate_staging=separate_staging,
                outside_memory=tile_memory == "spram",
            )
            for index in range(tiles)
        ]
        #: The LEDs/buttons node, or None.
        self.io = (
            IoNode(
                address=io_address(tiles),
                phase_at_reset=phase_at_reset(tiles),
                led_count=leds,
                button_count=buttons,
            )
            if has_io
            else None
        )

    @property
    def info(self) -> ChipInfo:
        return self._info

    def summary(self) -> str:
        """A few lines describing the configuration (printed by `python -m tessera.hw`)."""
        info = self._info
        link = (
            f"UART 8N1 {self._baud} baud (divisor {self._host.divisor} at {info.clock_hz} Hz)"
            if self._link == "uart"
            else "byte streams rx/tx (virtual board)"
        )
        nodes = self._unit_tiles + 1
        io = (
            [f"I/O node: address {io_address(self._tiles)}, {self._leds} LEDs, {self._buttons} buttons"]
            if self.io is not None
            else []
        )
        staging = "" if self._separate_staging else " (staged message in the queue's block RAM)"
        tiles = (
            f"{self._tiles} tiles x {self._mem_bytes} B memory{' (SPRAM)' if self._tile_memory == 'spram' else ''}, "
            f"{self._core} core, mailbox depth {self._mailbox_depth}{staging}"
            if self._tiles
            else "no tiles (the host link and the I/O node only)"
        )
        return "\n".join(
            [
                f"Tessera chip: {tiles}",
                f"network: slotted ring of {nodes} nodes (host = node {HOST_NODE}), {ring_length(nodes)} registers, "
                f"{MAX_WORDS} words per message, retry delay {self._retry_delay} cycles",
                f"host link: {link}, protocol v{info.protocol_version}, up to {info.max_words} words per frame",
                *io,
                f"features: {info.features.describe()}",
            ]
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        count = self._tiles
        addr_bits = self._info.mem_log2 - 2
        m.submodules.host = host = self._host
        if self._link == "uart":
            m.d.comb += [host.rx.eq(self.uart_rx), self.uart_tx.eq(host.tx)]
        else:
            wiring.connect(m, wiring.flipped(self.rx), host.rx)
            wiring.connect(m, host.tx, wiring.flipped(self.tx))
            m.d.comb += host.rx_error.eq(0)

        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)

        # ---- the ring: tile nodes, the host's unit, padding registers ------------------------------------------
        io = self.io
        # Ring order: the tiles, the I/O node (if any), the host's unit last.
        before_host = [*self.nodes, *([io] if io is not None else [])]
        if io is not None:
            m.submodules.io = io
            if self._leds:
                m.d.comb += self.leds.eq(io.leds)
            if self._buttons:
                m.d.comb += [io.buttons.eq(self.buttons), io.sample.eq(cycle[: self._debounce_bits].all())]
        host_unit = MessageUnit(
            address=HOST_NODE,
            num_tiles=self._unit_tiles,
            phase_at_reset=phase_at_reset(len(before_host)),
            depth=self._mailbox_depth,
            retry_delay=self._retry_delay,
            separate_staging=self._separate_staging,
        )
        m.submodules.host_node = host_unit
        wiring.connect(m, host.net, host_unit.core)
        # The bridge sends only to nodes that exist (a SEND to any other answers TILE_RANGE), so the host's node may
        # send anywhere: its permission set, never written, has no reader left and synthesis removes it.
        m.d.comb += host_unit.send_anywhere.eq(1)
        connect_ring(m, [*before_host, host_unit])
        if not count:
            return m  # the I/O node and the host link only: no tile bus (every tile command answers TILE_RANGE)

        # What every node would decode from the configuration word and the counter, decoded once.
        decoded = decode_node_inputs(m, host.tiles.wdata, cycle, self._unit_tiles)
        for index, node in enumerate(self.nodes):
            m.submodules[f"node{index}"] = node
            m.d.comb += [node.cycle.eq(cycle), node.decoded.eq(decoded)]
        if self._core == "bit":
            stream = cycle_counter_stream(m, cycle)
            for node in self.nodes:
                m.d.comb += [getattr(node.tile, name).eq(value) for name, value in zip(COUNTER_STREAM_MEMBERS, stream)]
        if self._tile_memory == "spram":
            for number, served in enumerate(spram_bank_tiles(count)):
                m.submodules[f"spram_bank{number}"] = bank = SpramBank(ports=len(served), addr_bits=addr_bits)
                for port, index in zip(bank.ports, served):
                    wiring.connect(m, self.nodes[index].memory, port)

        # ---- the bridge's tile bus: the fan-out, plus the message counters in status words 5 and 6 -------------
        m.submodules.fanout = fanout = TileFanout(tile_count=count, addr_bits=addr_bits)
        m.d.comb += fanout.cycle.eq(cycle)
        bus = host.tiles
        for name in bus.signature.members:
            if name in ("rdata", "busy", "done", "word_in", "word_shift"):
                continue
            m.d.comb += getattr(fanout.bus, name).eq(getattr(bus, name))
        for index, node in enumerate(self.nodes):
            if io is None:
                wiring.connect(m, fanout.tiles[index], node.control)
            else:
                self._connect_translated(m, fanout.tiles[index], node.control)
        m.d.comb += [
            bus.rdata.eq(fanout.bus.rdata | self._counter_read_data(m, bus)),
            bus.busy.eq(fanout.bus.busy),
            bus.done.eq(fanout.bus.done),
            bus.word_in.eq(fanout.bus.word_in),
            bus.word_shift.eq(fanout.bus.word_shift),
        ]
        return m

    def _counter_read_data(self, m: Module, bus: wiring.PureInterface) -> Signal | int:
        """The tile nodes' counters for STATUS words 4..6 (0 on a chip without counters), registered at `re` like
        the fan-out's own read data: one-hot selects, AND-OR of the counters."""
        if not self._counters:
            return 0
        count = self._tiles
        in_sel = Signal(count)
        out_sel = Signal(count)
        retired_sel = Signal(count)
        status_index = bus.addr[:3]
        for index in range(count):
            chosen = bus.re & bus.space & (bus.tile == index)
            m.d.sync += [
                in_sel[index].eq(chosen & (status_index == StatusWord.MESSAGES_IN)),
                out_sel[index].eq(chosen & (status_index == StatusWord.MESSAGES_OUT)),
                retired_sel[index].eq(chosen & (status_index == StatusWord.RETIRED)),
            ]
        counters = Signal(32)
        value = 0
        for index, node in enumerate(self.nodes):
            value = value | (in_sel[index].replicate(self._counter_bits) & node.messages_in)
            value = value | (out_sel[index].replicate(self._counter_bits) & node.messages_out)
            value = value | (retired_sel[index].replicate(len(node.retired)) & node.retired)
        m.d.comb += counters.eq(value)
        return counters

    def _connect_translated(self, m: Module, port: wiring.PureInterface, control: wiring.PureInterface) -> None:
        """Connect a fan-out port to a tile node, swapping permission bits T (host) and T + 1 (I/O node) of
        PERMISSIONS writes from the host's layout into the message units' (where the node is tile T)."""
        count = self._tiles
        ports = port.signature.flatten(port)
        controls = control.signature.flatten(control)
        for (path, member, source), (_, _, sink) in zip(ports, controls, strict=True):
            if member.flow != Out:
                m.d.comb += source.eq(sink)
            elif path == ("config_data",):
                wide = Cat(source, Const(0, 2))  # bits T and T + 1 exist whatever the tile count
                swapped = Cat(wide[:count], wide[count + 1], wide[count], wide[count + 2 :])
                m.d.comb += sink.eq(Mux(port.config_index == ConfigRegister.PERMISSIONS, swapped, source))
            else:
                m.d.comb += sink.eq(source)


def Chip(
    *,
    tile_count: int,
    mem_bytes: int,
    mailbox_depth: int,
    uart_divisor: int,
    clock_hz: int,
    leds: int = 0,
    buttons: int = 0,
    core: str = "parallel",
    counters: bool = True,
    separate_staging: bool = True,
    tile_memory: TileMemory = "block_ram",
    link: Link = "uart",
) -> TesseraChip:
    """The chip as the board builds ask for it (`tessera.boards.build.make_chip`): with the UART link, or with
    link="bytes" the same chip for the virtual board (`tessera sim --board`)."""
    return TesseraChip(
        core=core,
        tile_memory=tile_memory,
        counters=counters,
        separate_staging=separate_staging,
        leds=leds,
        buttons=buttons,
        tiles=tile_count,
        mem_bytes=mem_bytes,
        mailbox_depth=mailbox_depth,
        link=link,
        clock_hz=clock_hz,
        baud=round(clock_hz / uart_divisor),
    )

"""The network with real tiles running: the device under test of the network speed benchmark (`make bench-noc`).

The chip's ring (tile nodes at positions 0..T-1, the host's message unit at T, padding registers:
`tessera.hw.network.connect_ring`) without the host bridge. A small loader replaces the host: after
`enable` it writes one program into every tile's memory at once through the debug ports, allows every tile to send
to every tile, and starts them all. Nothing else drives the design, so a C++ loop can clock it free-running.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tessera.firmware.asm import assemble
from tessera.hw.core import check_mem_bytes
from tessera.hw.debug_serializer import DebugSerializer
from tessera.hw.message_unit import MessageUnit
from tessera.hw.network import connect_ring, phase_at_reset
from tessera.hw.noc_layouts import HOST_NODE
from tessera.hw.tile_node import TileNode
from tessera.os.protocol import ConfigRegister

#: Every tile's program: when nothing of its own is in flight, send a 1-word message (a xorshift32 value) to a
#: pseudo-random tile (possibly itself); then drain the mailbox without waiting. Never blocks, so tiles cannot
#: wait on each other. `{mask}` = the number of destination tiles - 1 (a power of two).
TRAFFIC_PROGRAM = """
    csrr  s1, mhartid
    addi  s1, s1, 1          # xorshift32 state: never 0
loop:
    msg.status t0
    andi  t0, t0, 1          # a message of ours is still in flight
    bnez  t0, drain
    slli  t0, s1, 13
    xor   s1, s1, t0
    srli  t0, s1, 17
    xor   s1, s1, t0
    slli  t0, s1, 5
    xor   s1, s1, t0
    andi  a1, s1, {mask}
    msg.put s1
    msg.send a1, zero
drain:
    msg.tryrecv a0
    beqz  a0, loop
    msg.get a0
    j     drain
"""


#: A tile node's permission register is written from the 32-bit configuration data (as SET_PERMISSIONS carries it),
#: so a tile can be allowed to send to tiles 0..31 only: on larger rings those are the destinations.
MAX_DESTINATIONS = 32


def traffic_program(num_tiles: int) -> list[int]:
    """TRAFFIC_PROGRAM assembled for a ring of `num_tiles` tiles, as memory words."""
    destinations = min(num_tiles, MAX_DESTINATIONS)
    return assemble(TRAFFIC_PROGRAM.format(mask=destinations - 1), "noc_tile_bench.s").words()


class TileRingBench(wiring.Component):
    """`num_tiles` tile nodes (a power of two, each `mem_bytes` of memory) running `traffic_program` on the ring:
    every tile sends to every tile, or with more than MAX_DESTINATIONS tiles to tiles 0..MAX_DESTINATIONS-1.

    Outputs: `cycles` = clock cycles since `enable`, `sent` / `received` = messages the tiles' SENDs handed to the
    network / their receives opened, summed over the tiles (from the tile nodes' message counters).
    """

    def __init__(self, *, num_tiles: int, mem_bytes: int = 1024, core: str = "parallel") -> None:
        if num_tiles < 1 or num_tiles & (num_tiles - 1):
            raise ValueError(f"tile count {num_tiles} must be a power of two (the program masks destinations)")
        self._num_tiles = num_tiles
        self._mem_bytes = mem_bytes
        self._core = core
        super().__init__({"enable": In(1), "cycles": Out(32), "sent": Out(32), "received": Out(32)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        count = self._num_tiles
        program = traffic_program(count)
        nodes = [
            TileNode(
                tile_id=index,
                num_tiles=count,
                mem_bytes=self._mem_bytes,
                phase_at_reset=phase_at_reset(index),
                counter_bits=32,
                core=self._core,
            )
            for index in range(count)
        ]
        host_unit = MessageUnit(address=HOST_NODE, num_tiles=count, phase_at_reset=phase_at_reset(count))
        m.submodules.host_node = host_unit
        cycle = Signal(64)
        m.d.sync += cycle.eq(cycle + 1)
        for index, node in enumerate(nodes):
            m.submodules[f"node{index}"] = node
            m.d.comb += node.cycle.eq(cycle)
        connect_ring(m, [*nodes, host_unit])

        # The loader: program words from a ROM into every tile at once, then permissions, then run.
        m.submodules.rom = rom = Memory(shape=32, depth=len(program), init=program)
        rom_read = rom.read_port(domain="comb")
        address = Signal(range(len(program) + 1))
        m.d.comb += rom_read.addr.eq(address)
        # One serializer drives every tile's debug port: each word is written to all tiles at once.
        m.submodules.loader = loader = DebugSerializer(addr_bits=check_mem_bytes(self._mem_bytes))
        word = Signal(32)  # the word being written, shifted out by the serializer
        with m.If(loader.shift):
            m.d.sync += word.eq(word[1:])
        m.d.comb += [loader.addr.eq(address), loader.wbit.eq(word[0])]
        permitting = Signal()
        starting = Signal()
        for node in nodes:
            control = node.control
            m.d.comb += [
                control.debug.shift.eq(loader.port.shift),
                control.debug.data_in.eq(loader.port.data_in),
                control.debug.addr_in.eq(loader.port.addr_in),
                control.debug.we.eq(loader.port.we),
                control.config_we.eq(permitting),
                control.config_index.eq(ConfigRegister.PERMISSIONS),
                control.config_data.eq(-1),
                control.run.eq(starting),
            ]
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.enable):
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.d.comb += loader.we.eq(1)
                m.d.sync += word.eq(rom_read.data)
                m.next = "LOADING"
            with m.State("LOADING"):
                with m.If(loader.done):
                    m.d.sync += address.eq(address + 1)
                    m.next = "LOAD"
                    with m.If(address == len(program) - 1):
                        m.next = "PERMIT"
            with m.State("PERMIT"):
                m.d.comb += permitting.eq(1)
                m.next = "START"
            with m.State("START"):
                m.d.comb += starting.eq(1)
                m.next = "RUNNING"
            with m.State("RUNNING"):
                pass

        with m.If(self.enable):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        m.d.comb += [
            self.sent.eq(sum(node.messages_out for node in nodes)),
            self.received.eq(sum(node.messages_in for node in nodes)),
        ]
        return m

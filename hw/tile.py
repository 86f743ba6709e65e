"""A tile: the RV32I core, its private memory, and the host's debug/load port into that memory.

Later issues add the mailbox and the router; until then a tile with a message unit exposes the core's
message port unchanged.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from tessera.firmware.isa import TileState
from tessera.hw.core_bit import COUNTER_STREAM_MEMBERS, BitSerialTileCore, counter_stream
from tessera.hw.core_serial import SerialTileCore
from tessera.hw.core import MemoryBusSignature, TileCore, check_mem_bytes, control_members
from tessera.hw.debug_port import DebugPortSignature
from tessera.hw.debug_target import DebugTarget

__all__ = ["CORES", "Tile", "core_class"]

#: The tile cores by name: "parallel" (TileCore: 32-bit multi-cycle, CPI ~4.8, 2 EBR register file), "serial"
#: (SerialTileCore: nibble-serial, CPI ~18, 1 EBR, higher Fmax) and "bit" (BitSerialTileCore: bit-serial, the
#: smallest). All implement the same contract (docs/core.md).
CORES = ("parallel", "serial", "bit")
AnyCore = TileCore | SerialTileCore | BitSerialTileCore


def core_class(name: str) -> type[AnyCore]:
    """The core component class called `name` (one of CORES)."""
    if name == "parallel":
        return TileCore
    if name == "serial":
        return SerialTileCore
    if name == "bit":
        return BitSerialTileCore
    raise ValueError(f"core={name!r}: expected one of {', '.join(CORES)}")


class Tile(wiring.Component):
    """Core + `mem_bytes` of memory (32-bit words, byte write enables, one block RAM read port).

    `debug` is the host's serial debug port into the memory (hw/debug_port.py; the protocol is
    `tessera.sim.debug_port_model`'s). It acts only while the core is neither RUNNING nor SLEEPING. The bit-serial
    core is its own target (its word and address shift registers serve the port while it is stopped), so its memory
    has one initiator; the other cores get a `DebugTarget` whose memory accesses take the core's place while the
    core is stopped. A read in the same cycle as a write is not performed. Control and status ports are the core's
    (see `TileCore`).

    With `outside_memory=True` (bit-serial core only) the tile has no memory of its own: its core's bus is the port
    `memory`, `Out(MemoryBusSignature(addr_bits, waits=True))`, for a memory shared with other tiles in which this
    tile owns `mem_bytes` (`tessera.hw.spram_bank.SpramBank`).

    With the bit-serial core the Tile also has the core's counter-stream inputs (`COUNTER_STREAM_MEMBERS`). A
    Tile built with `shared_counter_stream=False` ignores them and builds its own stream from `cycle`
    (`counter_stream`); on a chip, where one stream serves every tile, `shared_counter_stream=True` makes the Tile
    pass them to the core instead.
    """

    def __init__(
        self,
        *,
        mem_bytes: int,
        tile_id: int = 0,
        has_message_unit: bool = False,
        core: str = "parallel",
        shared_counter_stream: bool = False,
        outside_memory: bool = False,
    ):
        self._addr_bits = check_mem_bytes(mem_bytes)
        self._mem_bytes = mem_bytes
        if outside_memory:
            if core != "bit":
                raise ValueError(f"core={core!r}: only the bit-serial core can wait for a shared memory")
            self._core = BitSerialTileCore(
                mem_bytes=mem_bytes, tile_id=tile_id, has_message_unit=has_message_unit, memory_waits=True
            )
            self._memory = None
            outside = {"memory": Out(MemoryBusSignature(self._addr_bits, waits=True))}
        else:
            self._core = core_class(core)(mem_bytes=mem_bytes, tile_id=tile_id, has_message_unit=has_message_unit)
            # No read shares a cycle with a write (elaborate gates `read.en`), so a read never meets the word being
            # written: `no_rw_check` lets Yosys map the block RAM without read-during-write emulation.
            self._memory = memory.Memory(shape=32, depth=mem_bytes // 4, init=[], attrs={"no_rw_check": 1})
            outside = {}
        self._streamed = isinstance(self._core, BitSerialTileCore)
        if shared_counter_stream and not self._streamed:
            raise ValueError(f"a {type(self._core).__name__} tile reads `cycle`, it has no counter-stream inputs")
        self._stream_from_inputs = shared_counter_stream
        members = {"debug": In(DebugPortSignature()), **control_members(has_message_unit), **outside}
        super().__init__({**members, **(COUNTER_STREAM_MEMBERS if self._streamed else {})})

    @property
    def core(self) -> AnyCore:
        return self._core

    @property
    def memory_array(self) -> memory.Memory:
        """The tile memory (simulation harnesses may inspect `memory_array.data`); None with `outside_memory`."""
        return self._memory

    @property
    def mem_bytes(self) -> int:
        return self._mem_bytes

    def elaborate(self, platform):
        m = Module()
        core = self._core
        m.submodules.core = core

        for name in ("run", "halt", "reset_pc", "fault_in_valid", "fault_in_cause"):
            m.d.comb += getattr(core, name).eq(getattr(self, name))
        if not self._streamed:
            m.d.comb += core.cycle.eq(self.cycle)
        elif self._stream_from_inputs:
            for name in COUNTER_STREAM_MEMBERS:
                m.d.comb += getattr(core, name).eq(getattr(self, name))
        else:
            stream = counter_stream(m, self.cycle)
            m.d.comb += [getattr(core, name).eq(value) for name, value in zip(COUNTER_STREAM_MEMBERS, stream)]
        for name in ("state", "cause", "pc", "retired"):
            m.d.comb += getattr(self, name).eq(getattr(core, name))
        if "message" in self.signature.members:
            wiring.connect(m, core.message, wiring.flipped(self.message))

        if self._streamed:
            wiring.connect(m, wiring.flipped(self.debug), core.debug)
            bus = core.bus
        else:
            m.submodules.debug_target = target = DebugTarget(addr_bits=self._addr_bits)
            wiring.connect(m, wiring.flipped(self.debug), target.port)
            bus = _owned_bus(m, core, target.bus)
        if self._memory is None:  # the bit core's bus is the tile's `memory` port
            wiring.connect(m, bus, wiring.flipped(self.memory))
            return m
        m.submodules.memory = self._memory
        read = self._memory.read_port(domain="sync")
        write = self._memory.write_port(granularity=8)
        m.d.comb += [
            read.addr.eq(bus.addr),
            # Never a read in a write cycle (the core never does both; the debug port asks one at a time): this
            # tells Yosys that read/write collisions cannot happen, so it needs no read-first emulation around the RAM.
            read.en.eq(bus.re & ~bus.we),
            write.addr.eq(bus.addr),
            write.data.eq(bus.wdata),
            write.en.eq(bus.we.replicate(4) & bus.wmask),
            bus.rdata.eq(read.data),
        ]
        return m


def _owned_bus(m: Module, core: AnyCore, target: wiring.PureInterface) -> wiring.PureInterface:
    """The memory's initiator: the core while it is RUNNING or SLEEPING, else the debug target (whose requests
    are dropped while the core runs). Both get the memory's read data."""
    bus = MemoryBusSignature(len(core.bus.addr)).create(path=("memory_bus",))
    core_owns = (core.state == TileState.RUNNING) | (core.state == TileState.SLEEPING)
    for name in ("addr", "re", "we", "wdata", "wmask"):
        m.d.comb += getattr(bus, name).eq(Mux(core_owns, getattr(core.bus, name), getattr(target, name)))
    m.d.comb += [core.bus.rdata.eq(bus.rdata), target.rdata.eq(bus.rdata)]
    return bus

"""A tile: the RV32I core, its private memory, and the host's debug/load port into that memory.

Later issues add the mailbox and the router; until then a tile with a message unit exposes the core's
message port unchanged.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In

from tessera.firmware.isa import TileState
from tessera.hw.core_bit import COUNTER_STREAM_MEMBERS, BitSerialTileCore, counter_stream
from tessera.hw.core_serial import SerialTileCore
from tessera.hw.core import MemoryBusSignature, TileCore, check_mem_bytes, control_members

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

    `debug` is a word-addressed port with the same members as the core's bus (read data one cycle after `re`).
    It reaches memory only while the core is neither RUNNING nor SLEEPING; while the core runs, its writes are
    dropped and its read data is the core's. A read in the same cycle as a write is not performed. Control and
    status ports are the core's (see `TileCore`).

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
    ):
        addr_width = check_mem_bytes(mem_bytes)
        self._mem_bytes = mem_bytes
        self._core = core_class(core)(mem_bytes=mem_bytes, tile_id=tile_id, has_message_unit=has_message_unit)
        # No read shares a cycle with a write (elaborate gates `read.en`), so a read never meets the word being written:
        # `no_rw_check` lets Yosys map the block RAM without read-during-write emulation (lone flip-flops and a bypass).
        self._memory = memory.Memory(shape=32, depth=mem_bytes // 4, init=[], attrs={"no_rw_check": 1})
        self._streamed = isinstance(self._core, BitSerialTileCore)
        if shared_counter_stream and not self._streamed:
            raise ValueError(f"a {type(self._core).__name__} tile reads `cycle`, it has no counter-stream inputs")
        self._stream_from_inputs = shared_counter_stream
        members = {"debug": In(MemoryBusSignature(addr_width)), **control_members(has_message_unit)}
        super().__init__({**members, **(COUNTER_STREAM_MEMBERS if self._streamed else {})})

    @property
    def core(self) -> AnyCore:
        return self._core

    @property
    def memory(self) -> memory.Memory:
        """The tile memory (simulation harnesses may inspect `memory.data`)."""
        return self._memory

    @property
    def mem_bytes(self) -> int:
        return self._mem_bytes

    def elaborate(self, platform):
        m = Module()
        core = self._core
        m.submodules.core = core
        m.submodules.memory = self._memory
        read = self._memory.read_port(domain="sync")
        write = self._memory.write_port(granularity=8)

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

        core_owns = (core.state == TileState.RUNNING) | (core.state == TileState.SLEEPING)
        port = core.bus
        debug = self.debug
        write_enable = Mux(core_owns, port.we, debug.we)
        m.d.comb += [
            read.addr.eq(Mux(core_owns, port.addr, debug.addr)),
            # Never a read in a write cycle (the core never does both; a debug write wins): this tells Yosys
            # that read/write collisions cannot happen, so it needs no read-first emulation around the RAM.
            read.en.eq(Mux(core_owns, port.re, debug.re) & ~write_enable),
            write.addr.eq(Mux(core_owns, port.addr, debug.addr)),
            write.data.eq(Mux(core_owns, port.wdata, debug.wdata)),
            write.en.eq(write_enable.replicate(4) & Mux(core_owns, port.wmask, debug.wmask)),
            port.rdata.eq(read.data),
            debug.rdata.eq(read.data),
        ]
        return m

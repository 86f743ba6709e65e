"""The ring's padding: a delay of a few cycles on one 18-bit link, in block RAM instead of flip-flops."""

from __future__ import annotations

from amaranth.hdl import Cat, Module, ResetSignal, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from tessera.hw.noc_layouts import Flit

#: The shortest delay kept in block RAM: one cycle is a plain register (18 flip-flops, cheaper than the counter and
#: it needs no EBR).
MIN_CYCLES = 2


class RingDelay(wiring.Component):
    """`cycles` plain `Flit` registers in a row (cycles >= MIN_CYCLES), as a delay line in block RAM.

    Contract: `ring_out` during cycle c is `ring_in` of cycle c - `cycles`; during the first `cycles` cycles after a
    reset it is the all-zero flit (an `EMPTY` slot kind, data 0), which is what a row of registers holds then. So the
    ring sees no difference: it never stalls and every pad still counts as one hop.

    How: the memory is written every cycle at `write_at` (a counter modulo `cycles`) and read at the next write
    address, the flit written `cycles - 1` cycles ago, through a synchronous read port (the EBR's own read register)
    that shows it one cycle later. The memory has twice as many rows as needed: the upper half is never written and
    stays zero from configuration, and the read address points there while the line is still filling after a reset
    and while the reset is held (the read register is not reset, and the board holds the reset for many cycles
    after configuration, `tessera.boards.board_top`), so stale flits from before a reset never come out.
    """

    def __init__(self, *, cycles: int) -> None:
        if cycles < MIN_CYCLES:
            raise ValueError(f"a ring delay of {cycles} cycles: block RAM needs at least {MIN_CYCLES} (use registers)")
        self._cycles = cycles
        super().__init__({"ring_in": In(Flit), "ring_out": Out(Flit)})

    @property
    def cycles(self) -> int:
        return self._cycles

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cycles = self._cycles
        write_at = Signal(range(cycles))
        next_write_at = Signal.like(write_at)
        filling = Signal(init=1)  # the flit read now entered before the last reset: read zero instead
        address_bits = len(write_at)

        # The read address never equals the write address (the next write address differs from the current one
        # since cycles >= 2; while filling it is in the never-written half), so read-during-write behaviour does not
        # matter: `no_rw_check` tells Yosys so (the board build turns it into "collisions read undefined" for a
        # synchronous read port, `tessera.boards.build.yosys_overrides`), and it adds no read-first emulation.
        # The read register has no initial value: the EBR cannot give one (Yosys would add a flip-flop and an
        # 18-bit multiplexer to emulate it), and the reset rule above makes it unnecessary.
        m.submodules.memory = memory = Memory(
            shape=Flit, depth=2 << address_bits, init=[], attrs={"no_rw_check": 1, "ram_style": "block"}
        )
        write = memory.write_port()
        read = memory.read_port(domain="sync")

        with m.If(write_at == cycles - 1):
            m.d.comb += next_write_at.eq(0)
        with m.Else():
            m.d.comb += next_write_at.eq(write_at + 1)
        m.d.sync += write_at.eq(next_write_at)
        # From cycle `cycles - 1` after a reset on, the next write address holds a flit written since the reset
        # (first the one of cycle 0, read in cycle `cycles - 1` and out in cycle `cycles`).
        with m.If(write_at == cycles - 2):
            m.d.sync += filling.eq(0)

        m.d.comb += [
            write.en.eq(1),
            write.addr.eq(write_at),
            write.data.eq(self.ring_in),
            read.addr.eq(Cat(next_write_at, filling | ResetSignal("sync", allow_reset_less=True))),
            self.ring_out.eq(read.data),
        ]
        return m


def pad_ring(m: Module, last_stop_out: Value, registers: int) -> Value:
    """Add `registers` padding hops after the ring's last stop (whose output is `last_stop_out`); return what the
    first stop reads. One hop is a register, more are a `RingDelay` (submodule `ring_pad`)."""
    if registers == 0:
        return last_stop_out
    if registers == 1:
        register = Signal(Flit, name="ring_pad")
        m.d.sync += register.eq(last_stop_out)
        return register
    m.submodules.ring_pad = delay = RingDelay(cycles=registers)
    m.d.comb += delay.ring_in.eq(last_stop_out)
    return delay.ring_out

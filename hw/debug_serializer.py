"""The host side of the serial debug port: one word-wide read or write turned into the port's shifts."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.hw.debug_port import WORD_BITS, DebugPortSignature

__all__ = ["DebugSerializer"]


class DebugSerializer(wiring.Component):
    """Parameter: `addr_bits` (word address width of the target's memory).

    `re` or `we` in a cycle in which the serializer is idle starts a transfer of memory word `addr` (held until `done`,
    which is 1 for one cycle at the end: 33 cycles after `we`, 35 + addr_bits after `re`). (Held high, `re`/`we` start
    one transfer after another: the serializer is idle again in the cycle after `done`.) The word itself stays in the
    initiator's word register, which the serializer shifts: in every cycle with `shift` = 1 the initiator shifts it
    right by one bit, taking `rbit` at the top, and the bit leaving (`wbit`, the register's bit 0 before the shift) goes
    to the target. A write's 32 shifts send the word; a read's last 32 shifts (just before `done`) bring the word read
    into the register (the address shifts before them shift garbage in). The host bridge's word register, which it sends
    and receives bytes from anyway, serves; so the serializer keeps no word. `port` drives the target as
    `tessera.sim.debug_port_model` describes.
    """

    def __init__(self, *, addr_bits: int) -> None:
        if not 1 <= addr_bits <= WORD_BITS:
            raise ValueError(f"addr_bits {addr_bits} out of range 1..{WORD_BITS}")
        self._addr_bits = addr_bits
        super().__init__(
            {
                "addr": In(addr_bits),
                "re": In(1),
                "we": In(1),
                "done": Out(1),
                "shift": Out(1),
                "rbit": Out(1),
                "wbit": In(1),
                "port": Out(DebugPortSignature()),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        port = self.port
        # The bit of the word the shift in progress carries; it wraps to 0 after 31. A write's address rides in its
        # last addr_bits shifts (the earlier shifts' address bits pass through the target's address register and out
        # of it, so whatever the index picks for them does not matter); a read shifts the address alone, so it starts
        # at `offset` (the bits before would carry no word).
        count = Signal(range(WORD_BITS))
        offset = WORD_BITS - self._addr_bits
        reading = Signal()
        index = Signal(range(WORD_BITS))
        m.d.comb += [
            index.eq(count - offset),
            port.data_in.eq(self.wbit),
            port.addr_in.eq(self.addr.bit_select(index, 1)),
            self.rbit.eq(port.data_out),
            self.shift.eq(port.shift),
        ]
        with m.If(port.shift):
            m.d.sync += count.eq(count + 1)
        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += reading.eq(self.re)
                with m.If(self.re):
                    m.d.sync += count.eq(offset)
                with m.If(self.re | self.we):
                    m.next = "ADDRESS"
            with m.State("ADDRESS"):
                m.d.comb += port.shift.eq(1)
                with m.If(count == WORD_BITS - 1):
                    m.next = "ASK"
            with m.State("ASK"):  # a write is done now; a read's word is loaded in the next cycle
                m.d.comb += [port.re.eq(reading), port.we.eq(~reading), self.done.eq(~reading)]
                m.next = "IDLE"
                with m.If(reading):
                    m.next = "LOAD"
            with m.State("LOAD"):
                m.next = "COLLECT"
            with m.State("COLLECT"):
                m.d.comb += port.shift.eq(1)
                with m.If(count == WORD_BITS - 1):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"
        return m

"""The host's serial debug port into one tile's memory: one data wire in, one out, one address wire in.

A tile's memory is reached by shifting: the host side (`tessera.hw.debug_serializer.DebugSerializer`) shifts a
word and its address into the tile one bit per cycle, then asks for a write or a read; a read's word is shifted
back out the same way. Serial, because the bit-serial core already has a word shift register (`dat`) and an
address shift register, which the port reuses while the core is stopped: a tile then needs no 32-bit write-data
multiplexer in front of its memory, and the chip no 32-bit read-data multiplexer per tile (docs/architecture.md,
"Host access"). A word costs 33 cycles to write and 42 to read (1 KiB tiles), far below a UART byte time.

`tessera.sim.debug_port_model.DebugTargetModel` is the reference; its docstring is the protocol.
"""

from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["DebugPortSignature", "WORD_BITS"]

#: Bits shifted per transfer: a whole word, and the word address in the last of them.
WORD_BITS = 32


class DebugPortSignature(wiring.Signature):
    """The port seen from its initiator (the host side); a tile takes it flipped (`In(DebugPortSignature())`).

    - `shift`: in this cycle the target's word register takes `data_in` at its top and its address register takes
      `addr_in` at its top; both move one bit down. `data_out` is the word register's bit 0 (the bit leaving).
    - `re`: read the memory word at the address register into the word register (loaded at the end of the next
      cycle); `we`: write the word register to the memory word at the address register (all four bytes).
    The target acts only while its core is stopped (HALTED or TRAPPED); a running tile ignores the port.
    """

    def __init__(self) -> None:
        super().__init__(
            {
                "shift": Out(1),
                "data_in": Out(1),
                "addr_in": Out(1),
                "re": Out(1),
                "we": Out(1),
                "data_out": In(1),
            }
        )

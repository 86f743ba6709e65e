"""The DOWN message: what a tile node's hardware sends to the tile's supervisor when the tile stops.

A DOWN message is an ordinary network message (docs/network.md) from the stopped tile's address, so it reaches a
supervisor tile's mailbox or the host exactly like any other message and keeps per-pair order with the tile's
earlier messages. It is told apart by its tag. docs/architecture.md ("Fault path") describes when it is sent.
"""

from __future__ import annotations

import enum

#: Tag of a DOWN message (the service-level tags 0xFFFF = log line and 0xFFFE = DOWN are reserved).
DOWN_TAG = 0xFFFE


class DownWord(enum.IntEnum):
    """Payload word positions of a DOWN message."""

    CAUSE = 0  # firmware.isa.Cause of the stop
    PC = 1  # the core's pc when it stopped (faulting instruction; the next one for ECALL)
    DETAIL = 2  # ASSERTION (msg.fault): the low DETAIL_BITS bits of rs1 (the runtime's FaultReason); else 0


#: Payload words of a DOWN message.
DOWN_WORDS = len(DownWord)
#: Bits of msg.fault's rs1 that a DOWN message carries.
DETAIL_BITS = 8

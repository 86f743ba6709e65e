"""Numbers and data layouts of Tessera's on-chip network (docs/network.md explains them).

The network is a unidirectional slotted ring. Every link is a 16-bit data flit plus a 2-bit slot kind, moving one
router per cycle and never stalling. The ring is cut into slots of `SLOT_FLITS` consecutive flits; a message rides in
one slot: flit 0 = route header (dest, src, length), flit 1 = tag, flits 2.. = payload words as 16-bit halves (low
half first). The slot kind is only meaningful on a slot's first flit. An ACK/NACK is the same slot with its kind
changed: its route header still names the original sender (src) and receiver (dest).

The encoding of the message instructions (custom-0) is defined in `tessera.firmware.isa` (`MessageFunct3`,
`MessageOp`) and re-exported here for the message unit and the reference model (`tessera.sim.noc_model`).
"""

from __future__ import annotations

from amaranth.lib import data, enum

# The message instructions' numbers live with the rest of the ISA (the assembler needs them without Amaranth);
# they are re-exported here for the gateware.
from tessera.firmware.isa import MessageFunct3 as MessageFunct3
from tessera.firmware.isa import MessageOp as MessageOp

#: Width of a node address. Tiles are 0..num_tiles-1; the host is HOST_NODE.
NODE_BITS = 7
#: The host's node address (the same on every chip size, so tile software can name it as a constant).
HOST_NODE = (1 << NODE_BITS) - 1
#: The most tiles a ring can address (every address below HOST_NODE).
MAX_TILES = HOST_NODE

#: Payload words per message: 1..MAX_WORDS. Each extra word costs 2 flits in every slot (ring bandwidth) and
#: 2 halfwords of staging memory per node; 4 keeps a slot at 10 flits.
MAX_WORDS = 4
FLIT_BITS = 16
HALVES_PER_WORD = 32 // FLIT_BITS
#: Flits per slot: route header, tag, payload halves.
SLOT_FLITS = 2 + HALVES_PER_WORD * MAX_WORDS
#: Halfwords a mailbox entry spans in memory (a whole slot, rounded up to a power of two).
ENTRY_HALVES = 1 << (SLOT_FLITS - 1).bit_length()


class SlotKind(enum.Enum, shape=2):
    """What a slot carries (read on the slot's first flit only)."""

    EMPTY = 0
    DATA = 1  # a message: route header, tag, payload
    ACK = 2  # the destination took the message (route header: dest = original sender)
    NACK = 3  # the destination's mailbox had no room: the sender must retry


#: One ring link.
Flit = data.StructLayout({"data": FLIT_BITS, "kind": SlotKind})

#: Flit 0 of a slot: where it goes, who sent it, how many payload words follow (minus one).
RouteHeader = data.StructLayout({"dest": NODE_BITS, "src": NODE_BITS, "len_m1": 2})

#: A flit leaving the ring into the local mailbox: `index` = its position in the slot (0 = route header).
EjectFlit = data.StructLayout({"data": FLIT_BITS, "index": range(SLOT_FLITS)})

#: A message's first two flits as one word, as SEND stages it (staging word 0) and the mailbox stores it.
MessageHeader = data.StructLayout({"route": RouteHeader, "tag": 16})

#: The header word that a receive instruction returns: never 0 (len >= 1), so 0 can mean "no message".
ReceivedHeader = data.StructLayout({"src": NODE_BITS, "_zero0": 1, "len": 3, "_zero1": 5, "tag": 16})

#: The word that MSG.STATUS returns.
MessageStatus = data.StructLayout({"send_busy": 1, "_zero0": 3, "staged": 3, "_zero1": 1, "unread": 3})

#: Receive timeouts are counted in a timer of this width; a larger timeout is a MESSAGE_FAULT.
TIMEOUT_BITS = 16


def ring_length(num_nodes: int) -> int:
    """Registers around the ring: one per router, padded to a whole number of slots."""
    return -(-num_nodes // SLOT_FLITS) * SLOT_FLITS


def permission_index(dest: int, num_tiles: int) -> int | None:
    """Bit of the permission set that governs sends to `dest`, or None if `dest` is not a node."""
    if dest == HOST_NODE:
        return num_tiles
    if 0 <= dest < num_tiles:
        return dest
    return None

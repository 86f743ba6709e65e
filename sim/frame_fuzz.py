"""Random, corrupted, truncated, oversize and garbage host-link frames for fuzzing the bridge (docs/protocol.md).

`fuzz_frames(rng, info, count)` returns wire bytes (each a whole SLIP frame) in these kinds, chosen at random:
good commands (some repeating the previous `seq`, so DUPLICATE is exercised), well-formed frames with a bad
version, an unknown opcode, a wrong payload length or a tile / address out of range, bodies with 1..3 flipped
bits, truncated bodies, oversize bodies, short garbage, and frames whose SLIP escape is broken.

`refuse` names opcodes that must never execute (a test against a real chip leaves out RUN, SEND and STATUS, whose
effects or replies a model without the tiles' programs cannot predict): any frame that would pass every check
up to execution with such an opcode is drawn again. The test compares replies with `tessera.sim.bridge_model`,
so the generator needs no knowledge of the expected answers.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection

from tessera.os import protocol as p

#: The lowest opcode no command has (opcodes up to MESSAGE - 1 may be given to new commands).
FIRST_UNKNOWN_OPCODE = max(op for op in p.Opcode if op != p.Opcode.MESSAGE) + 1
#: Bytes that make an ESC before them a broken escape (END would end the frame instead).
NOT_ESCAPES = [b for b in range(256) if b not in (p.END, p.ESC_END, p.ESC_ESC)]
#: Kinds of frame, in the order `fuzz_frames` counts them.
KINDS = ("good", "semantic", "bit_flip", "truncated", "oversize", "garbage", "bad_escape")


def _command(rng: random.Random, info: p.ChipInfo) -> p.Command:
    """One syntactically valid command, with tile and address sometimes just out of range."""
    tile = rng.randrange(info.tile_count + 1)
    words = info.mem_bytes // 4
    address = 4 * rng.randrange(words + 2)

    def some_words(most: int) -> tuple[int, ...]:
        return tuple(rng.randrange(1 << 32) for _ in range(rng.randrange(1, most + 1)))

    makers: list[Callable[[], p.Command]] = [
        lambda: p.Identify(),
        lambda: p.WriteMem(tile=tile, address=address, words=some_words(info.max_words)),
        lambda: p.ReadMem(tile=tile, address=address, count=rng.randrange(1, info.max_words + 1)),
        lambda: p.Reset(tile=tile),
        lambda: p.Halt(tile=tile),
        lambda: p.Run(tile=tile),
        lambda: p.ReadStatus(tile=tile),
        lambda: p.SetPermissions(tile=tile, value=rng.randrange(1 << 32)),
        lambda: p.SetSupervisor(tile=tile, value=rng.randrange(1 << 32)),
        lambda: p.SetWatchdog(tile=tile, value=rng.randrange(1 << 32)),
        lambda: p.Send(tile=tile, tag=rng.randrange(1 << 16), words=some_words(info.message_words)),
        lambda: p.AckMessage(push_seq=rng.randrange(256)),
        lambda: p.RepushMessage(),
    ]
    return rng.choice(makers)()


def _semantic_error(rng: random.Random, info: p.ChipInfo, seq: int) -> bytes:
    """A body with a good CRC that a later check refuses (or that is an odd but legal frame)."""
    body = bytearray(_command(rng, info).body(seq))[: -p.CRC_BYTES]
    choice = rng.randrange(5)
    if choice == 0:  # another protocol version
        body[0] = (rng.choice([0, 2, 3, 4, 5, 6, 7]) << 5) | (body[0] & 0x1F)
    elif choice == 1:  # an opcode the bridge does not know (MESSAGE included)
        body[0] = (p.PROTOCOL_VERSION << 5) | rng.choice([*range(FIRST_UNKNOWN_OPCODE, p.Opcode.MESSAGE), p.Opcode.MESSAGE])
    elif choice == 2:  # a payload byte too many or too few
        body = body + bytes([rng.randrange(256)]) if rng.random() < 0.5 or len(body) == 3 else body[:-1]
    elif choice == 3:  # a word count of 0 or above max_words
        body = bytearray(p.ReadMem(tile=0, address=0, count=rng.choice([0, info.max_words + 1, 255])).body(seq))
        body = body[: -p.CRC_BYTES]
    else:  # a tile number far out of range
        body[2] = rng.randrange(info.tile_count, 256)
    return p.seal(bytes(body))


def would_execute(body: bytes, info: p.ChipInfo) -> p.Opcode | None:
    """The opcode of a body that passes every check before execution except DUPLICATE (which depends on what ran
    before), else None. A conservative test for `refuse`: length and address checks are not applied."""
    if not p.MIN_FRAME <= len(body) <= p.max_body(info.max_words) or p.crc16(body) != 0:
        return None
    version, opcode = body[0] >> 5, body[0] & 0x1F
    if opcode not in set(p.Opcode) - {p.Opcode.MESSAGE}:
        return None
    if version != p.PROTOCOL_VERSION and opcode != p.Opcode.IDENTIFY:
        return None
    if opcode not in (p.Opcode.IDENTIFY, p.Opcode.ACK_MESSAGE, p.Opcode.REPUSH_MESSAGE) and body[2] >= info.tile_count:
        return None
    return p.Opcode(opcode)


def fuzz_frames(
    rng: random.Random, info: p.ChipInfo, count: int, *, refuse: Collection[p.Opcode] = (), first_seq: int = 1
) -> tuple[list[bytes], dict[str, int]]:
    """`count` frames on the wire and how many of each kind (KINDS) were made."""
    frames: list[bytes] = []
    made = dict.fromkeys(KINDS, 0)
    seq = first_seq & 0xFF
    limit = p.max_body(info.max_words)
    while len(frames) < count:
        if rng.random() < 0.9:  # otherwise reuse the last number: a duplicate, if the last frame executed
            seq = (seq + 1) & 0xFF
        kind = rng.choice(KINDS)
        if kind == "good":
            body = _command(rng, info).body(seq)
        elif kind == "semantic":
            body = _semantic_error(rng, info, seq)
        elif kind == "bit_flip":
            flipped = bytearray(_command(rng, info).body(seq))
            for _ in range(rng.randrange(1, 4)):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            body = bytes(flipped)
        elif kind == "truncated":
            whole = _command(rng, info).body(seq)
            body = whole[: rng.randrange(1, len(whole))]
        elif kind == "oversize":
            head = _command(rng, info).body(seq)[: p.HEADER_BYTES]
            body = p.seal(head + bytes(rng.randrange(256) for _ in range(rng.randrange(limit - 4, limit + 40))))
        elif kind == "garbage":
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        else:  # bad_escape: ESC followed by a byte that is neither ESC_END nor ESC_ESC, anywhere in the frame
            body = _command(rng, info).body(seq)
            cut = rng.randrange(len(body) + 1)
            broken = bytes([p.ESC, rng.choice(NOT_ESCAPES)])
            frames.append(p.slip_encode(body[:cut])[:-1] + broken + p.slip_encode(body[cut:])[1:])
            made[kind] += 1
            continue
        if would_execute(body, info) in refuse:
            continue
        frames.append(p.slip_encode(body))
        made[kind] += 1
    return frames, made

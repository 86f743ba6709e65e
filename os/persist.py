"""Persistent services: state snapshots the service sends to the host, kept next to the image, restored into the
tile's memory before the service runs again (after a restart, a reload or a power cycle of the board).

The snapshot messages (tile -> host, tag SNAPSHOT_TAG; docs/host-os.md):
- data:   words = (byte address, w1[, w2[, w3]]): the tile's memory from `address` holds w1, w2, ... now.
- commit: words = (SNAPSHOT_COMMIT, n): the snapshot is complete and consists of the n data words sent since the
          previous commit. Only a complete snapshot replaces the saved one, so a tile that dies half-way through
          sending leaves the last good snapshot in place.
Every data word must lie inside the service's state fields (`TileImage.state_fields`): a snapshot with a word
anywhere else is dropped (and reported), so restoring a snapshot can never overwrite the service's code.

The saved snapshot is a JSON file `<image stem>.<service>.state.json` next to the image, written atomically
(temporary file + rename). It holds the state layout with the values: each field's name, address, size and
bytes. Restoring goes by field name, as `tessera reload`'s handover does (`tessera.os.reload.carry_over`), so a
snapshot survives a rebuild that changes the code but keeps the fields (moved, grown, new or dropped fields
included); a field that shrank is refused: the file is kept and nothing is restored.

Restoring writes the values into the tile's memory after its image was loaded and before `run`, so the service
cannot take a message before its state is back.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from tessera.os.chip import Chip, Incoming
from tessera.os.codegen_support import SNAPSHOT_COMMIT, SNAPSHOT_TAG
from tessera.os.image import RuntimeImage, StateField, TileImage
from tessera.os.reload import carry_over

#: 2: the state layout (field name, address, size, bytes) instead of words and a CRC of the memory image.
FORMAT = 2


@dataclass
class _Pending:
    words: dict[int, int] = field(default_factory=dict)  # byte address -> word
    count: int = 0
    dropped: bool = False  # a word outside the state fields came: ignore the rest up to the commit


@dataclass(frozen=True)
class Received:
    """What one snapshot message did: the file written when it completed a snapshot, or why the snapshot in
    progress was dropped."""

    saved: Path | None = None
    problem: str = ""


@dataclass(frozen=True)
class Restored:
    """What `restore` did: `words` written, or why nothing was (`problem`)."""

    words: int
    problem: str = ""


class Snapshots:
    """The snapshots of one image's persistent services, stored next to `image_path`."""

    def __init__(self, image: RuntimeImage, image_path: Path) -> None:
        self.image = image
        self.image_path = Path(image_path)
        self._pending: dict[int, _Pending] = {}

    def path(self, tile: TileImage) -> Path:
        return self.image_path.with_name(f"{self.image_path.stem}.{tile.service}.state.json")

    @staticmethod
    def accepts(message: Incoming) -> bool:
        return message.tag == SNAPSHOT_TAG

    def receive(self, tile: TileImage, message: Incoming) -> Received:
        """Take one snapshot message from `tile`."""
        pending = self._pending.setdefault(tile.tile, _Pending())
        words = message.words
        if words[0] == SNAPSHOT_COMMIT:
            complete = len(words) == 2 and words[1] == pending.count and not pending.dropped
            self._pending.pop(tile.tile)
            return Received(self.save(tile, pending.words)) if complete else Received()
        if pending.dropped:
            return Received()
        address = words[0]
        if address % 4 or len(words) < 2:  # malformed: the snapshot in progress cannot be trusted
            self._pending.pop(tile.tile)
            return Received()
        outside = [address + 4 * index for index in range(len(words) - 1)
                   if not _in_state(tile.state_fields, address + 4 * index)]
        if outside:
            pending.dropped = True
            return Received(problem=f"snapshot dropped: it writes {outside[0]:#x}, outside the state fields of "
                                    f"{tile.service} ({_describe(tile.state_fields)})")
        for index, word in enumerate(words[1:]):
            pending.words[address + 4 * index] = word
        pending.count += len(words) - 1
        return Received()

    def load(self, tile: TileImage) -> dict[str, tuple[StateField, bytes]] | None:
        """The saved fields: name -> (the field as saved, its bytes), or None if the file is not usable."""
        try:
            document = json.loads(self.path(tile).read_text(encoding="utf-8"))
            if document.get("format") != FORMAT:
                return None
            return {entry["name"]: (StateField(entry["name"], int(entry["address"], 16), int(entry["size"])),
                                    bytes.fromhex(entry["bytes"])) for entry in document["fields"]}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def restore(self, chip: Chip, tile: TileImage) -> Restored:
        """Write the saved state into the (halted, freshly loaded) tile, field by field."""
        path = self.path(tile)
        if not path.exists():
            return Restored(0)
        saved = self.load(tile)
        if saved is None:
            return Restored(0, f"{path.name} is unreadable or was written by another version of tessera: "
                               f"not restored")
        sizes = {state.name: state.size for state in tile.state_fields}
        shrunk = [(name, old.size, sizes[name]) for name, (old, _) in saved.items()
                  if name in sizes and sizes[name] < old.size]
        if shrunk:
            name, was, now = shrunk[0]
            return Restored(0, f"{path.name}: field {name} of {tile.service} is {now} bytes in this build, "
                               f"{was} when it was saved: not restored (the file is kept)")
        handover = carry_over({name: value for name, (_, value) in saved.items()},
                              [state for state, _ in saved.values()], tile)
        write_words(chip, tile.tile, handover.words)
        return Restored(len(handover.words))

    def save(self, tile: TileImage, words: dict[int, int]) -> Path:
        """Store `words` (byte address -> word, as `tile`'s build lays out its fields) as the snapshot: a complete
        snapshot received, or the state `tessera reload` hands over to a new build. A field is saved when the
        words cover it whole."""
        fields = []
        for state in tile.state_fields:
            first = state.address & ~3
            span = range(first, state.address + state.size, 4)
            if all(address in words for address in span):
                raw = b"".join(words[address].to_bytes(4, "little") for address in span)
                value = raw[state.address - first:state.address - first + state.size]
                fields.append({"name": state.name, "address": f"{state.address:#x}", "size": state.size,
                               "bytes": value.hex()})
        path = self.path(tile)
        document = {"format": FORMAT, "service": tile.service, "tile": tile.tile, "fields": fields}
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        return path


def _in_state(fields: tuple[StateField, ...], address: int) -> bool:
    """Whether the memory word at `address` belongs to a state field (a field's words, padding included)."""
    return any(state.address & ~3 <= address < state.address + state.size for state in fields)


def _describe(fields: tuple[StateField, ...]) -> str:
    if not fields:
        return "it has none"
    return ", ".join(f"{state.name} {state.address:#x}..{state.address + state.size - 1:#x}" for state in fields)


def write_words(chip: Chip, tile: int, words: dict[int, int]) -> None:
    """Write `words` (byte address -> word) into the stopped `tile`, one WRITE_MEM run per consecutive range."""
    for start, run in _runs(words):
        chip.write_memory(tile, start, b"".join(word.to_bytes(4, "little") for word in run))


def _runs(words: dict[int, int]) -> list[tuple[int, list[int]]]:
    """Consecutive word addresses grouped into (start, words) runs."""
    runs: list[tuple[int, list[int]]] = []
    for address in sorted(words):
        if runs and runs[-1][0] + 4 * len(runs[-1][1]) == address:
            runs[-1][1].append(words[address])
        else:
            runs.append((address, [words[address]]))
    return runs

"""Persistent services: state snapshots the service sends to the host, kept next to the image, restored into the
tile's memory before the service runs again (after a restart, a reload or a power cycle of the board).

The snapshot messages (tile -> host, tag SNAPSHOT_TAG; docs/host-os.md):
- data:   words = (byte address, w1[, w2[, w3]]): the tile's memory from `address` holds w1, w2, ... now.
- commit: words = (COMMIT, n): the snapshot is complete and consists of the n data words sent since the previous
          commit. Only a complete snapshot replaces the saved one, so a tile that dies half-way through sending
          leaves the last good snapshot in place.
The saved snapshot is a JSON file `<image stem>.<service>.state.json` next to the image, written atomically
(temporary file + rename). It records a CRC of the tile's memory image: a snapshot taken by another build of the
service is not restored into this one (its addresses may mean something else).

Restoring writes the saved words into the tile's memory after its image was loaded and before `run`, so the
service cannot take a message before its state is back.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from tessera.os.chip import Chip, Incoming
from tessera.os.image import RuntimeImage, TileImage

SNAPSHOT_TAG = 0xFFFD
COMMIT = 0xFFFF_FFFF
FORMAT = 1


@dataclass
class _Pending:
    words: dict[int, int] = field(default_factory=dict)  # byte address -> word
    count: int = 0


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

    def receive(self, tile: TileImage, message: Incoming) -> Path | None:
        """Take one snapshot message from `tile`; returns the file written when it completed a snapshot."""
        pending = self._pending.setdefault(tile.tile, _Pending())
        words = message.words
        if words[0] == COMMIT:
            complete = len(words) == 2 and words[1] == pending.count
            self._pending.pop(tile.tile)
            if not complete:
                return None
            return self._save(tile, pending.words)
        address = words[0]
        if address % 4 or len(words) < 2 or address + 4 * (len(words) - 1) > self.image.chip.mem_bytes:
            self._pending.pop(tile.tile)  # malformed: the snapshot in progress cannot be trusted
            return None
        for index, word in enumerate(words[1:]):
            pending.words[address + 4 * index] = word
        pending.count += len(words) - 1
        return None

    def load(self, tile: TileImage) -> dict[int, int] | None:
        """The saved words (byte address -> word), or None if there is no usable snapshot."""
        path = self.path(tile)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return None
        if document.get("format") != FORMAT or document.get("memory_crc") != _crc(tile):
            return None
        return {int(address, 16): int(word) for address, word in document["words"].items()}

    def restore(self, chip: Chip, tile: TileImage) -> Restored:
        """Write the saved state into the (halted, freshly loaded) tile."""
        path = self.path(tile)
        if not path.exists():
            return Restored(0)
        words = self.load(tile)
        if words is None:
            return Restored(0, f"{path.name} is unreadable or was saved by another build of {tile.service}: "
                               f"not restored")
        for start, run in _runs(words):
            chip.write_memory(tile.tile, start, b"".join(word.to_bytes(4, "little") for word in run))
        return Restored(len(words))

    def _save(self, tile: TileImage, words: dict[int, int]) -> Path:
        path = self.path(tile)
        document = {"format": FORMAT, "service": tile.service, "tile": tile.tile, "memory_crc": _crc(tile),
                    "words": {f"{address:#x}": word for address, word in sorted(words.items())}}
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        os.replace(temporary, path)
        return path


def _crc(tile: TileImage) -> int:
    return zlib.crc32(tile.memory)


def _runs(words: dict[int, int]) -> list[tuple[int, list[int]]]:
    """Consecutive word addresses grouped into (start, words) runs."""
    runs: list[tuple[int, list[int]]] = []
    for address in sorted(words):
        if runs and runs[-1][0] + 4 * len(runs[-1][1]) == address:
            runs[-1][1].append(words[address])
        else:
            runs.append((address, [words[address]]))
    return runs

"""The runtime image (.tsi): everything the host needs to bring a Tessera system up, in one checksummed file.

    write_image(image, "app.tsi")
    image = read_image("app.tsi")       # ImageError (one line) if corrupt, truncated or of another version
    print(describe(image))

docs/image-format.md specifies the bytes. In short: a 20-byte header (magic, format version, body length, CRC-32 of
the body), then a body of sections (id, length, payload), each exactly once: chip parameters, tiles (memory image,
permissions, supervisor address, persistence), the name table, the supervision tree, initial messages and the
manifest text. `decode` checks the image completely (structure and cross references) before anything uses it, so
the host never loads half of a bad image into a chip.
"""

from __future__ import annotations

import enum
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tessera.os.errors import TesseraError
from tessera.os.manifest import SourceKind
from tessera.os.supervision import Strategy, SupervisorSpec

MAGIC = b"\x89TSI\r\n\x1a\n"  # PNG-style: a non-ASCII byte, and line endings that text-mode copies would mangle
FORMAT_VERSION = 2  # 2: tiles carry their state fields
HEADER = struct.Struct("<8sHHII")  # magic, format version, flags (0), body length, CRC-32 of the body
SECTION = struct.Struct("<HHI")  # id, reserved (0), payload length; the payload is zero-padded to 4 bytes


class Section(enum.IntEnum):
    CHIP = 1
    TILES = 2
    NAMES = 3
    TREE = 4
    MESSAGES = 5
    MANIFEST = 6


class NameKind(enum.IntEnum):
    """What a name-table entry addresses."""

    SERVICE = 0  # a service on a tile
    HOST = 1  # the host
    IO = 2  # a built-in service of the chip's I/O node (`led`, `button`; hw/io_node.py)


SOURCE_KINDS = tuple(SourceKind)
STRATEGIES = tuple(Strategy)
_PERSIST = 1
_BARE = 2


class ImageError(TesseraError):
    """An image that must not be loaded; the message names the file and the problem in one line."""


@dataclass(frozen=True)
class ChipParams:
    """The chip the image was built for; `tessera run` refuses a chip with other parameters."""

    tiles: int
    mem_bytes: int
    mailbox_depth: int
    host_node: int  # the host's network address


@dataclass(frozen=True)
class StateField:
    """Where one piece of a service's state lives in tile memory: what a snapshot of it covers."""

    name: str
    address: int  # byte address in tile memory
    size: int  # bytes


@dataclass(frozen=True)
class TileImage:
    """One tile's contents: what to write from address 0 and how to configure it."""

    tile: int
    service: str
    kind: SourceKind
    source: str  # the source file as the manifest named it
    memory: bytes  # loaded from address 0 (runtime and service, or a bare image)
    code_bytes: int  # the service's own share of `memory` (all of it for a bare image)
    stack_bytes: int  # stack the service needs at most (without recursion)
    permissions: int  # bit i: may send to tile i; bit `tiles`: to the host; bit `tiles`+1: to the I/O node
    supervisor: int  # network address that receives the tile's DOWN messages
    persist: bool
    bare: bool
    #: The service's state, in address order (Python: its fields; C: the objects in the state section; assembly:
    #: `__state_start` .. `__state_end`); what `snapshot()` sends and a persistent service's host restores.
    state_fields: tuple[StateField, ...] = ()


@dataclass(frozen=True)
class NameEntry:
    name: str
    address: int
    kind: NameKind


@dataclass(frozen=True)
class InitialMessage:
    to: str
    address: int
    tag: int
    words: tuple[int, ...]


@dataclass(frozen=True)
class RuntimeImage:
    app: str
    chip: ChipParams
    tiles: tuple[TileImage, ...]  # by tile number
    names: tuple[NameEntry, ...]
    tree: SupervisorSpec
    messages: tuple[InitialMessage, ...]
    manifest_name: str
    manifest_text: str

    def tile_of(self, service: str) -> TileImage:
        for tile in self.tiles:
            if tile.service == service:
                return tile
        raise KeyError(service)

    def start_order(self) -> tuple[str, ...]:
        return tuple(self.tree.services())


# -- bytes ----------------------------------------------------------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def u8(self, value: int) -> None:
        self.out += struct.pack("<B", value)

    def u16(self, value: int) -> None:
        self.out += struct.pack("<H", value)

    def u32(self, value: int) -> None:
        self.out += struct.pack("<I", value)

    def blob(self, data: bytes) -> None:
        self.u32(len(data))
        self.out += data

    def text(self, value: str) -> None:
        self.blob(value.encode("utf-8"))


class _Reader:
    """Reads one section's payload; running off its end or leaving bytes over is an ImageError."""

    def __init__(self, data: bytes, file: str, section: Section) -> None:
        self.data = data
        self.position = 0
        self.file = file
        self.section = section

    def error(self, problem: str) -> ImageError:
        return ImageError(f"{self.file}: {self.section.name.lower()} section: {problem}")

    def take(self, count: int) -> bytes:
        if self.position + count > len(self.data):
            raise self.error(f"truncated (needs {self.position + count} bytes, has {len(self.data)})")
        chunk = self.data[self.position:self.position + count]
        self.position += count
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def blob(self) -> bytes:
        return self.take(self.u32())

    def text(self) -> str:
        try:
            return self.blob().decode("utf-8")
        except UnicodeDecodeError:
            raise self.error("a name or text is not UTF-8") from None

    def enum(self, values: tuple, what: str):  # type: ignore[no-untyped-def, type-arg]
        index = self.u8()
        if index >= len(values):
            raise self.error(f"unknown {what} code {index}")
        return values[index]

    def finish(self) -> None:
        if self.position != len(self.data):
            raise self.error(f"{len(self.data) - self.position} unexpected bytes after its contents")


def encode(image: RuntimeImage) -> bytes:
    """The .tsi bytes of `image` (checked first: an inconsistent image is a bug of its builder)."""
    check(image, "<image being written>")
    sections: dict[Section, Callable[[_Writer, RuntimeImage], None]] = {
        Section.CHIP: _write_chip,
        Section.TILES: _write_tiles,
        Section.NAMES: _write_names,
        Section.TREE: lambda w, i: _write_supervisor(w, i.tree),
        Section.MESSAGES: _write_messages,
        Section.MANIFEST: _write_manifest,
    }
    body = bytearray()
    for section, write in sections.items():
        writer = _Writer()
        write(writer, image)
        payload = bytes(writer.out)
        body += SECTION.pack(section, 0, len(payload)) + payload + bytes(-len(payload) % 4)
    return HEADER.pack(MAGIC, FORMAT_VERSION, 0, len(body), zlib.crc32(body)) + bytes(body)


def decode(data: bytes, file: str = "<image>") -> RuntimeImage:
    """Parse and check .tsi bytes; `file` names the image in errors."""
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise ImageError(f"{file}: not a Tessera runtime image (it does not start with the .tsi magic)")
    if len(data) < HEADER.size:
        raise ImageError(f"{file}: truncated: {len(data)} bytes, shorter than the {HEADER.size}-byte header")
    _, version, flags, body_length, crc = HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ImageError(f"{file}: image format version {version}, but this tessera reads version {FORMAT_VERSION}: "
                         f"rebuild it with `tessera build`")
    if flags:
        raise ImageError(f"{file}: unknown header flags {flags:#06x}")
    body = data[HEADER.size:]
    if len(body) < body_length:
        raise ImageError(f"{file}: truncated: the header announces {body_length} body bytes, the file has {len(body)}")
    if len(body) > body_length:
        raise ImageError(f"{file}: {len(body) - body_length} unexpected bytes after the image's end")
    if zlib.crc32(body) != crc:
        raise ImageError(f"{file}: checksum mismatch (stored {crc:#010x}, computed {zlib.crc32(body):#010x}): "
                         f"the file is corrupt")
    payloads = _split_sections(body, file)
    chip = _read_chip(_Reader(payloads[Section.CHIP], file, Section.CHIP))
    tiles = _read_tiles(_Reader(payloads[Section.TILES], file, Section.TILES))
    names = _read_names(_Reader(payloads[Section.NAMES], file, Section.NAMES))
    tree_reader = _Reader(payloads[Section.TREE], file, Section.TREE)
    tree = _read_supervisor(tree_reader, depth=0)
    tree_reader.finish()
    messages = _read_messages(_Reader(payloads[Section.MESSAGES], file, Section.MESSAGES))
    app, manifest_name, manifest_text = _read_manifest(_Reader(payloads[Section.MANIFEST], file, Section.MANIFEST))
    image = RuntimeImage(app, chip, tiles, names, tree, messages, manifest_name, manifest_text)
    check(image, file)
    return image


def write_image(image: RuntimeImage, path: str | Path) -> None:
    Path(path).write_bytes(encode(image))


def read_image(path: str | Path) -> RuntimeImage:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot read the image: {error.strerror or error}") from None
    return decode(data, str(path))


def _split_sections(body: bytes, file: str) -> dict[Section, bytes]:
    payloads: dict[Section, bytes] = {}
    position = 0
    while position < len(body):
        if position + SECTION.size > len(body):
            raise ImageError(f"{file}: truncated section header at body byte {position}")
        number, reserved, length = SECTION.unpack_from(body, position)
        try:
            section = Section(number)
        except ValueError:
            raise ImageError(f"{file}: unknown section id {number} at body byte {position}") from None
        if reserved:
            raise ImageError(f"{file}: {section.name.lower()} section: reserved field is {reserved}, not 0")
        if section in payloads:
            raise ImageError(f"{file}: {section.name.lower()} section appears twice")
        start = position + SECTION.size
        end = start + length
        if end + (-length % 4) > len(body):
            raise ImageError(f"{file}: {section.name.lower()} section runs past the end of the image")
        payloads[section] = body[start:end]
        position = end + (-length % 4)
    missing = [s.name.lower() for s in Section if s not in payloads]
    if missing:
        raise ImageError(f"{file}: missing section(s): {', '.join(missing)}")
    return payloads


def _write_chip(w: _Writer, image: RuntimeImage) -> None:
    w.u16(image.chip.tiles)
    w.u32(image.chip.mem_bytes)
    w.u16(image.chip.mailbox_depth)
    w.u16(image.chip.host_node)


def _read_chip(r: _Reader) -> ChipParams:
    chip = ChipParams(tiles=r.u16(), mem_bytes=r.u32(), mailbox_depth=r.u16(), host_node=r.u16())
    r.finish()
    return chip


def _permission_bytes(tiles: int) -> int:
    return (tiles + 1 + 7) // 8


def _write_tiles(w: _Writer, image: RuntimeImage) -> None:
    w.u16(len(image.tiles))
    for tile in image.tiles:
        w.u16(tile.tile)
        w.text(tile.service)
        w.u8(SOURCE_KINDS.index(tile.kind))
        w.u8((_PERSIST if tile.persist else 0) | (_BARE if tile.bare else 0))
        w.text(tile.source)
        w.blob(tile.memory)
        w.u32(tile.code_bytes)
        w.u32(tile.stack_bytes)
        size = max(_permission_bytes(image.chip.tiles), (tile.permissions.bit_length() + 7) // 8)  # + I/O bit
        w.blob(tile.permissions.to_bytes(size, "little"))
        w.u16(tile.supervisor)
        w.u16(len(tile.state_fields))
        for state in tile.state_fields:
            w.text(state.name)
            w.u32(state.address)
            w.u32(state.size)


def _read_tiles(r: _Reader) -> tuple[TileImage, ...]:
    tiles = []
    for _ in range(r.u16()):
        tile, service, kind = r.u16(), r.text(), r.enum(SOURCE_KINDS, "source kind")
        flags = r.u8()
        if flags & ~(_PERSIST | _BARE):
            raise r.error(f"tile {tile}: unknown flags {flags:#04x}")
        source, memory, code_bytes, stack_bytes = r.text(), r.blob(), r.u32(), r.u32()
        permissions = int.from_bytes(r.blob(), "little")
        supervisor = r.u16()
        state_fields = tuple(StateField(r.text(), r.u32(), r.u32()) for _ in range(r.u16()))
        tiles.append(TileImage(tile, service, kind, source, memory, code_bytes, stack_bytes, permissions, supervisor,
                               bool(flags & _PERSIST), bool(flags & _BARE), state_fields))
    r.finish()
    return tuple(tiles)


def _write_names(w: _Writer, image: RuntimeImage) -> None:
    w.u16(len(image.names))
    for entry in image.names:
        w.text(entry.name)
        w.u16(entry.address)
        w.u8(entry.kind)


def _read_names(r: _Reader) -> tuple[NameEntry, ...]:
    names = tuple(NameEntry(r.text(), r.u16(), r.enum(tuple(NameKind), "name kind")) for _ in range(r.u16()))
    r.finish()
    return names


_CHILD_SERVICE = 0
_CHILD_SUPERVISOR = 1
#: Deeper trees are refused when reading, so a hostile file cannot exhaust Python's recursion.
MAX_TREE_DEPTH = 64


def _write_supervisor(w: _Writer, supervisor: SupervisorSpec) -> None:
    w.text(supervisor.name)
    w.u8(STRATEGIES.index(supervisor.strategy))
    w.u32(supervisor.max_restarts)
    w.u32(supervisor.period_ms)
    w.u16(len(supervisor.children))
    for child in supervisor.children:
        if isinstance(child, SupervisorSpec):
            w.u8(_CHILD_SUPERVISOR)
            _write_supervisor(w, child)
        else:
            w.u8(_CHILD_SERVICE)
            w.text(child)


def _read_supervisor(r: _Reader, depth: int) -> SupervisorSpec:
    if depth > MAX_TREE_DEPTH:
        raise r.error(f"the tree is deeper than {MAX_TREE_DEPTH} levels")
    name, strategy = r.text(), r.enum(STRATEGIES, "strategy")
    max_restarts, period_ms = r.u32(), r.u32()
    children: list[str | SupervisorSpec] = []
    for _ in range(r.u16()):
        kind = r.u8()
        if kind == _CHILD_SUPERVISOR:
            children.append(_read_supervisor(r, depth + 1))
        elif kind == _CHILD_SERVICE:
            children.append(r.text())
        else:
            raise r.error(f"unknown child kind {kind} in supervisor {name!r}")
    return SupervisorSpec(name, strategy, max_restarts, period_ms, tuple(children))


def _write_messages(w: _Writer, image: RuntimeImage) -> None:
    w.u16(len(image.messages))
    for message in image.messages:
        w.text(message.to)
        w.u16(message.address)
        w.u16(message.tag)
        w.u8(len(message.words))
        for word in message.words:
            w.u32(word)


def _read_messages(r: _Reader) -> tuple[InitialMessage, ...]:
    messages = []
    for _ in range(r.u16()):
        to, address, tag = r.text(), r.u16(), r.u16()
        words = tuple(r.u32() for _ in range(r.u8()))
        messages.append(InitialMessage(to, address, tag, words))
    r.finish()
    return tuple(messages)


def _write_manifest(w: _Writer, image: RuntimeImage) -> None:
    w.text(image.app)
    w.text(image.manifest_name)
    w.text(image.manifest_text)


def _read_manifest(r: _Reader) -> tuple[str, str, str]:
    fields = r.text(), r.text(), r.text()
    r.finish()
    return fields


# -- consistency ----------------------------------------------------------------------------------------------


def check(image: RuntimeImage, file: str) -> None:
    """Refuse an image whose parts contradict each other (every reference resolves, everything fits the chip)."""

    def fail(problem: str) -> ImageError:
        return ImageError(f"{file}: inconsistent image: {problem}")

    chip = image.chip
    if not 1 <= chip.tiles <= chip.host_node or chip.mem_bytes < 4 or chip.mem_bytes & (chip.mem_bytes - 1):
        raise fail(f"impossible chip parameters {chip}")
    numbers = [tile.tile for tile in image.tiles]
    if numbers != sorted(set(numbers)) or any(n >= chip.tiles for n in numbers):
        raise fail(f"tile numbers {numbers} are not distinct, ascending and below {chip.tiles}")
    for tile in image.tiles:
        if len(tile.memory) > chip.mem_bytes or tile.code_bytes > len(tile.memory):
            raise fail(f"tile {tile.tile}: {len(tile.memory)} bytes of memory image ({tile.code_bytes} of service "
                       f"code) for a {chip.mem_bytes}-byte tile")
        if len(tile.memory) + tile.stack_bytes > chip.mem_bytes:
            raise fail(f"tile {tile.tile}: {len(tile.memory)} bytes + {tile.stack_bytes} bytes of stack exceed "
                       f"{chip.mem_bytes} bytes")
        if tile.permissions >> (chip.tiles + 2):  # the tiles, the host and the I/O node
            raise fail(f"tile {tile.tile}: permissions {tile.permissions:#x} name nodes beyond the chip")
        _check_state_fields(tile, fail)
    services = [tile.service for tile in image.tiles]
    if len(set(services)) != len(services):
        raise fail(f"a service runs on two tiles: {services}")
    if sorted(image.tree.services()) != sorted(services):
        raise fail(f"the tree supervises {sorted(image.tree.services())}, the tiles run {sorted(services)}")
    supervisor_names = [s.name for s in image.tree.supervisors()]
    if len(set(supervisor_names)) != len(supervisor_names) or set(supervisor_names) & set(services):
        raise fail("supervisor names are not distinct from each other and from services")
    addresses = {entry.name: entry for entry in image.names}
    if len(addresses) != len(image.names):
        raise fail("a name appears twice in the name table")
    for tile in image.tiles:
        entry = addresses.get(tile.service)
        if entry is None or entry.kind != NameKind.SERVICE or entry.address != tile.tile:
            raise fail(f"the name table does not map service {tile.service!r} to tile {tile.tile}")
    for entry in image.names:
        if entry.kind == NameKind.SERVICE and entry.name not in services:
            raise fail(f"the name table maps {entry.name!r} to a tile, but no tile runs it")
        if entry.kind == NameKind.HOST and entry.address != chip.host_node:
            raise fail(f"host name {entry.name!r} maps to {entry.address}, not the host node {chip.host_node}")
    for message in image.messages:
        entry = addresses.get(message.to)
        if entry is None or entry.address != message.address or not 1 <= len(message.words) <= 4:
            raise fail(f"initial message to {message.to!r} (address {message.address}) does not match the names")


def _check_state_fields(tile: TileImage, fail: Callable[[str], ImageError]) -> None:
    """State fields are named once, in ascending address order, do not overlap and lie in the memory image."""
    end = 0
    for state in tile.state_fields:
        if state.address < end or state.size == 0 or state.address + state.size > len(tile.memory):
            raise fail(f"tile {tile.tile}: state field {state.name!r} ({state.size} bytes at {state.address:#x}) "
                       f"overlaps another, is empty or lies outside the {len(tile.memory)}-byte memory image")
        end = state.address + state.size
    names = [state.name for state in tile.state_fields]
    if len(set(names)) != len(names):
        raise fail(f"tile {tile.tile}: a state field is named twice: {names}")


# -- reading it ------------------------------------------------------------------------------------------------


def permitted_names(image: RuntimeImage, tile: TileImage) -> list[str]:
    """The names whose node the tile may send to, in name-table order."""
    out = []
    for entry in image.names:
        if entry.kind == NameKind.IO:
            index = image.chip.tiles + 1
        else:
            index = image.chip.tiles if entry.address == image.chip.host_node else entry.address
        if tile.permissions >> index & 1:
            out.append(entry.name)
    return out


def describe(image: RuntimeImage) -> str:
    """A readable summary: chip, tiles and services with sizes, names, the tree, permissions, messages."""
    chip = image.chip
    lines = [f"image {image.app!r} from {image.manifest_name} (format version {FORMAT_VERSION})",
             f"chip: {chip.tiles} tiles x {chip.mem_bytes} bytes, mailbox depth {chip.mailbox_depth}, "
             f"host node {chip.host_node}", "", "tiles:"]
    width = max((len(t.service) for t in image.tiles), default=7)
    lines.append(f"  tile  {'service':<{width}}  kind      image  code  stack  free  flags    source")
    used = {tile.tile: tile for tile in image.tiles}
    for number in range(chip.tiles):
        tile = used.get(number)
        if tile is None:
            lines.append(f"  {number:>4}  {'-':<{width}}  (free)")
            continue
        free = chip.mem_bytes - len(tile.memory) - tile.stack_bytes
        flags = ",".join(flag for flag, on in (("persist", tile.persist), ("bare", tile.bare)) if on) or "-"
        lines.append(f"  {number:>4}  {tile.service:<{width}}  {tile.kind.value:<8}  {len(tile.memory):>5}  "
                     f"{tile.code_bytes:>4}  {tile.stack_bytes:>5}  {free:>4}  {flags:<7}  {tile.source}")
    lines += ["", "names:"]
    for entry in image.names:
        where = "host" if entry.kind == NameKind.HOST else ("tile" if entry.kind == NameKind.SERVICE else "i/o")
        lines.append(f"  {entry.name:<{width}}  -> {entry.address:>3} ({where})")
    lines += ["", "supervision tree (start order top to bottom):"]
    lines += _tree_lines(image.tree, image, "  ")
    lines += ["", "permissions (may send to):"]
    for tile in image.tiles:
        allowed = ", ".join(permitted_names(image, tile)) or "nobody"
        supervisor = "host" if tile.supervisor == chip.host_node else f"node {tile.supervisor}"
        lines.append(f"  {tile.service:<{width}}  -> {allowed}  (DOWN to {supervisor})")
    persistent = [tile for tile in image.tiles if tile.persist]
    if persistent:
        lines += ["", "state of persistent services (restored before they run):"]
        for tile in persistent:
            fields = ", ".join(f"{state.name} {state.size} B at {state.address:#x}" for state in tile.state_fields)
            lines.append(f"  {tile.service:<{width}}  {fields or 'no state fields'}")
    lines += ["", "initial messages:"]
    for message in image.messages:
        words = " ".join(f"{word:#x}" for word in message.words)
        lines.append(f"  -> {message.to} (tile {message.address}) tag {message.tag}: {words}")
    if not image.messages:
        lines.append("  none")
    return "\n".join(lines) + "\n"


def _tree_lines(supervisor: SupervisorSpec, image: RuntimeImage, indent: str) -> list[str]:
    lines = [f"{indent}{supervisor.name} [{supervisor.strategy.value}, at most {supervisor.max_restarts} restarts "
             f"in {supervisor.period_ms / 1000:g} s]"]
    for child in supervisor.children:
        if isinstance(child, SupervisorSpec):
            lines += _tree_lines(child, image, indent + "  ")
        else:
            lines.append(f"{indent}  {child} (tile {image.tile_of(child).tile})")
    return lines

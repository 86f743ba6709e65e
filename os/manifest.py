"""The system manifest: a TOML file naming a Tessera system's services, its supervision tree and its chip.

    manifest = load_manifest("app.toml")
    manifest.services["kv"].source      # absolute path of the service's source
    manifest.tree                       # the root SupervisorSpec
    manifest.start_order()              # service names, depth-first manifest order

docs/manifest.md describes the format. Every problem is refused with a `ManifestError` whose message names the
file, the line where it can be found, the TOML key path and the problem, e.g.
`app.toml:14: services.kv.tile: pinned to tile 9, but the chip has tiles 0..7`.
Checks that need the compiled services (sizes, names a source sends to) happen in `tessera.os.build`.
"""

from __future__ import annotations

import enum
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessera.os.errors import TesseraError
from tessera.os.supervision import Strategy, SupervisorSpec

#: The name a service uses for the host (for `sends`); no service or supervisor may take it.
HOST_NAME = "host"
#: The built-in services of the chip's I/O node (hw/io_node.py, docs/boards.md): `led` takes SET_LEDS, `button`
#: SUBSCRIBE/UNSUBSCRIBE. A service lists them in `sends` without declaring them; nothing else may take the names.
IO_NAMES = ("led", "button")
#: Most tiles a chip can have: node addresses are 7 bits and the host takes the last one (docs/network.md).
MAX_TILES = 127
#: Payload words in one message (docs/network.md).
MAX_MESSAGE_WORDS = 4
#: OTP's defaults: a supervisor gives up after more than one restart within five seconds.
DEFAULT_MAX_RESTARTS = 1
DEFAULT_PERIOD_S = 5
#: Stack an assembly or bare service reserves when its manifest entry gives none.
DEFAULT_STACK_BYTES = 64

NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

KeyPath = tuple[str | int, ...]


class SourceKind(enum.Enum):
    """What language a service is written in, from its file suffix."""

    PYTHON = "python"
    ASSEMBLY = "assembly"
    C = "c"
    ELF = "elf"  # a prebuilt RV32I executable linked with firmware/c/service.ld


SOURCE_SUFFIXES = {".py": SourceKind.PYTHON, ".s": SourceKind.ASSEMBLY, ".S": SourceKind.ASSEMBLY, ".c": SourceKind.C,
                   ".elf": SourceKind.ELF}


def format_path(path: KeyPath) -> str:
    """`("services", "kv", "sends", 1)` -> `services.kv.sends[1]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


class ManifestError(TesseraError):
    """A manifest that cannot describe a system. `line` is 0 when the problem has no single line."""

    def __init__(self, file: str, path: KeyPath, problem: str, line: int = 0) -> None:
        self.file = file
        self.path = path
        self.problem = problem
        self.line = line
        where = f"{file}:{line}" if line else file
        key = f" {format_path(path)}:" if path else ""
        super().__init__(f"{where}:{key} {problem}")


@dataclass(frozen=True)
class ChipSpec:
    """The chip an image targets: `tiles` tiles of `mem_bytes` bytes, mailboxes `mailbox_depth` messages deep."""

    tiles: int
    mem_bytes: int
    mailbox_depth: int


@dataclass(frozen=True)
class ServiceSpec:
    """One service as the manifest declares it. `tile` is None for automatic placement."""

    name: str
    source: Path
    kind: SourceKind
    tile: int | None
    sends: tuple[str, ...]
    persist: bool
    bare: bool  # the source is a whole tile image from address 0, without the runtime
    stack_bytes: int  # stack reserved by an assembly or C service (a Python service's is computed)


@dataclass(frozen=True)
class MessageSpec:
    """A message the host sends once every service has started."""

    to: str
    tag: int
    words: tuple[int, ...]  # each 0 .. 2**32-1


@dataclass(frozen=True)
class Manifest:
    path: Path
    text: str
    name: str
    chip: ChipSpec
    services: Mapping[str, ServiceSpec]  # in manifest order
    tree: SupervisorSpec
    messages: tuple[MessageSpec, ...]

    def start_order(self) -> tuple[str, ...]:
        return tuple(self.tree.services())

    def error(self, path: KeyPath, problem: str) -> ManifestError:
        """An error about this manifest's key `path` (for checks made after parsing)."""
        return ManifestError(str(self.path), path, problem, locate(self.text, path))


def load_manifest(path: str | Path) -> Manifest:
    """Read, parse and check a manifest file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ManifestError(str(path), (), f"cannot read the manifest: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise ManifestError(str(path), (), f"the manifest is not UTF-8 text ({error.reason})") from None
    return parse_manifest(text, path)


def parse_manifest(text: str, path: str | Path) -> Manifest:
    """Parse and check manifest `text`; `path` names it in errors and anchors relative source paths."""
    path = Path(path)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(str(path), error) from None
    return _Checker(path, text).check(document)


def _syntax_error(file: str, error: tomllib.TOMLDecodeError) -> ManifestError:
    """tomllib says "Problem (at line L, column C)": rephrase it as `file:L:C: TOML syntax: problem`."""
    message = str(error)
    match = re.fullmatch(r"(?s)(.*) \(at line (\d+), column (\d+)\)", message)
    if match is None:
        return ManifestError(file, (), f"TOML syntax: {message}")
    problem, line, column = match.groups()
    return ManifestError(f"{file}:{line}:{column}", (), f"TOML syntax: {problem.lower()}")


class _Checker:
    """Turns a parsed TOML document into a Manifest, refusing the first problem it finds."""

    TOP_KEYS = {"app", "chip", "services", "supervisors", "messages"}
    APP_KEYS = {"name"}
    CHIP_KEYS = {"tiles", "mem_bytes", "mailbox_depth"}
    SERVICE_KEYS = {"source", "tile", "sends", "persist", "bare", "stack"}
    SUPERVISOR_KEYS = {"strategy", "max_restarts", "period", "children"}
    MESSAGE_KEYS = {"to", "tag", "words"}

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text

    def error(self, path: KeyPath, problem: str) -> ManifestError:
        return ManifestError(str(self.path), path, problem, locate(self.text, path))

    # -- typed access ------------------------------------------------------------------------------------

    def table(self, value: Any, path: KeyPath, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.error(path, f"must be a table, not {_describe(value)}")
        for key in value:
            if key not in allowed:
                raise self.error((*path, key), f"unknown key (allowed here: {', '.join(sorted(allowed))})")
        return value

    def required(self, table: Mapping[str, Any], key: str, path: KeyPath) -> Any:
        if key not in table:
            raise self.error(path, f"missing key `{key}`")
        return table[key]

    def integer(self, value: Any, path: KeyPath, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"must be an integer, not {_describe(value)}")
        if value < low or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f">= {low}"
            raise self.error(path, f"{value} is out of range ({span})")
        return value

    def string(self, value: Any, path: KeyPath) -> str:
        if not isinstance(value, str):
            raise self.error(path, f"must be a string, not {_describe(value)}")
        return value

    def boolean(self, value: Any, path: KeyPath) -> bool:
        if not isinstance(value, bool):
            raise self.error(path, f"must be true or false, not {_describe(value)}")
        return value

    def array(self, value: Any, path: KeyPath) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(path, f"must be an array, not {_describe(value)}")
        return value

    def name(self, value: str, path: KeyPath, what: str) -> str:
        if not NAME_PATTERN.match(value):
            raise self.error(path, f"{what} name {value!r} is not an identifier (letters, digits, _)")
        if value == HOST_NAME:
            raise self.error(path, f"`{HOST_NAME}` is reserved for the host; choose another {what} name")
        if value in IO_NAMES:
            raise self.error(path, f"`{value}` is a built-in service of the chip's I/O node; "
                                   f"choose another {what} name")
        return value

    # -- sections ----------------------------------------------------------------------------------------

    def check(self, document: dict[str, Any]) -> Manifest:
        self.table(document, (), self.TOP_KEYS)
        app = self.table(document.get("app", {}), ("app",), self.APP_KEYS)
        name = self.string(app.get("name", self.path.stem), ("app", "name"))
        chip = self.chip(self.required(document, "chip", ()))
        services = self.services(self.required(document, "services", ()), chip)
        tree = self.tree(self.required(document, "supervisors", ()), services)
        messages = self.messages(document.get("messages", []), services)
        return Manifest(self.path, self.text, name, chip, services, tree, messages)

    def chip(self, value: Any) -> ChipSpec:
        path: KeyPath = ("chip",)
        chip = self.table(value, path, self.CHIP_KEYS)
        tiles = self.integer(self.required(chip, "tiles", path), (*path, "tiles"), 1, MAX_TILES)
        mem_bytes = self.integer(self.required(chip, "mem_bytes", path), (*path, "mem_bytes"), 1024)
        if mem_bytes & (mem_bytes - 1):
            raise self.error((*path, "mem_bytes"), f"{mem_bytes} is not a power of two")
        depth = self.integer(self.required(chip, "mailbox_depth", path), (*path, "mailbox_depth"), 1)
        return ChipSpec(tiles, mem_bytes, depth)

    def services(self, value: Any, chip: ChipSpec) -> dict[str, ServiceSpec]:
        if not isinstance(value, dict) or not value:
            raise self.error(("services",), "must be a table with at least one service ([services.NAME])")
        names = list(value)
        for name in names:
            self.name(name, ("services", name), "service")
        if len(names) > chip.tiles:
            raise self.error(("services",), f"{len(names)} services but the chip has only {chip.tiles} tiles")
        services = {name: self.service(name, value[name], set(names), chip) for name in names}
        pinned: dict[int, str] = {}
        for service in services.values():
            if service.tile is None:
                continue
            if service.tile in pinned:
                raise self.error(("services", service.name, "tile"),
                                 f"tile {service.tile} is already pinned to service {pinned[service.tile]}")
            pinned[service.tile] = service.name
        return services

    def service(self, name: str, value: Any, declared: set[str], chip: ChipSpec) -> ServiceSpec:
        path: KeyPath = ("services", name)
        entry = self.table(value, path, self.SERVICE_KEYS)
        source_text = self.string(self.required(entry, "source", path), (*path, "source"))
        source = (self.path.parent / source_text).resolve()
        kind = SOURCE_SUFFIXES.get(source.suffix)
        if kind is None:
            raise self.error((*path, "source"), f"{source_text!r}: unknown source type {source.suffix!r} "
                                                f"(use .py, .s, .c or .elf)")
        if not source.is_file():
            raise self.error((*path, "source"), f"{source_text!r} not found (looked for {source})")
        tile = None
        if "tile" in entry:
            tile = self.integer(entry["tile"], (*path, "tile"), 0)
            if tile >= chip.tiles:
                raise self.error((*path, "tile"), f"pinned to tile {tile}, but the chip has tiles 0..{chip.tiles - 1}")
        sends = self.array(entry.get("sends", []), (*path, "sends"))
        for index, destination in enumerate(sends):
            where = (*path, "sends", index)
            self.string(destination, where)
            if destination != HOST_NAME and destination not in IO_NAMES and destination not in declared:
                raise self.error(where, f"sends to {destination!r}, which is not a declared service "
                                        f"(declared: {', '.join(sorted(declared))}, and {HOST_NAME}, "
                                        f"{', '.join(IO_NAMES)})")
            if destination in sends[:index]:
                raise self.error(where, f"{destination!r} is listed twice")
        persist = self.boolean(entry.get("persist", False), (*path, "persist"))
        bare = self.boolean(entry.get("bare", False), (*path, "bare"))
        if kind in (SourceKind.PYTHON, SourceKind.ELF) and bare:
            raise self.error((*path, "bare"), f"{'a Python' if kind is SourceKind.PYTHON else 'an ELF'} service "
                                              f"always runs on the tile runtime")
        if "stack" in entry and kind is SourceKind.PYTHON:
            raise self.error((*path, "stack"), "the compiler computes a Python service's stack; remove this key")
        stack = self.integer(entry.get("stack", DEFAULT_STACK_BYTES), (*path, "stack"), 0)
        return ServiceSpec(name, source, kind, tile, tuple(sends), persist, bare, stack)

    def tree(self, value: Any, services: Mapping[str, ServiceSpec]) -> SupervisorSpec:
        if not isinstance(value, dict) or not value:
            raise self.error(("supervisors",), "must be a table with at least one supervisor ([supervisors.NAME])")
        entries: dict[str, tuple[Strategy, int, int, list[str]]] = {}
        for name, entry in value.items():
            path: KeyPath = ("supervisors", name)
            self.name(name, path, "supervisor")
            if name in services:
                raise self.error(path, f"name clash: {name!r} is both a service and a supervisor")
            entries[name] = self.supervisor(name, entry, services, value)
        parent: dict[str, str] = {}  # child (service or supervisor) -> the supervisor that lists it
        for name, (_, _, _, children) in entries.items():
            for index, child in enumerate(children):
                if child in parent:
                    other = "the same supervisor" if parent[child] == name else f"supervisor {parent[child]!r}"
                    raise self.error(("supervisors", name, "children", index),
                                     f"{child!r} is already a child of {other}: a child has exactly one supervisor")
                parent[child] = name
        for name in entries:  # follow parents upwards: meeting a name again is a cycle
            chain = [name]
            while chain[-1] in parent:
                chain.append(parent[chain[-1]])
                if chain[-1] in chain[:-1]:
                    loop = chain[chain.index(chain[-1]):]
                    cycle = " -> ".join(reversed(loop))
                    raise self.error(("supervisors", loop[0], "children"),
                                     f"cycle in the supervision tree: {cycle} (each supervises the next)")
        roots = [name for name in entries if name not in parent]
        if len(roots) > 1:
            raise self.error(("supervisors",), f"the tree has several roots ({', '.join(roots)}): "
                                               f"make all but one children of another supervisor")
        orphans = [name for name in services if name not in parent]
        if orphans:
            raise self.error(("services", orphans[0]), f"service {orphans[0]!r} is in no supervisor's children")
        return self.build_tree(roots[0], entries)

    def supervisor(self, name: str, value: Any, services: Mapping[str, ServiceSpec],
                   supervisors: Mapping[str, Any]) -> tuple[Strategy, int, int, list[str]]:
        path: KeyPath = ("supervisors", name)
        entry = self.table(value, path, self.SUPERVISOR_KEYS)
        strategy_text = self.string(self.required(entry, "strategy", path), (*path, "strategy"))
        try:
            strategy = Strategy(strategy_text)
        except ValueError:
            raise self.error((*path, "strategy"), f"unknown strategy {strategy_text!r} "
                                                  f"(use {', '.join(s.value for s in Strategy)})") from None
        max_restarts = self.integer(entry.get("max_restarts", DEFAULT_MAX_RESTARTS), (*path, "max_restarts"), 0)
        period = entry.get("period", DEFAULT_PERIOD_S)
        if isinstance(period, bool) or not isinstance(period, (int, float)) or not math.isfinite(period):
            raise self.error((*path, "period"), f"must be a number of seconds, not {_describe(period)}")
        period_ms = round(period * 1000)
        if period_ms < 1 or period_ms >= 1 << 32:
            raise self.error((*path, "period"), f"{period} s is out of range (0.001 .. 4294967 s)")
        children = self.array(self.required(entry, "children", path), (*path, "children"))
        if not children:
            raise self.error((*path, "children"), "a supervisor needs at least one child")
        for index, child in enumerate(children):
            self.string(child, (*path, "children", index))
            if child not in services and child not in supervisors:
                raise self.error((*path, "children", index), f"unknown service or supervisor {child!r}")
        return strategy, max_restarts, period_ms, children

    def build_tree(self, name: str, entries: Mapping[str, tuple[Strategy, int, int, list[str]]]) -> SupervisorSpec:
        strategy, max_restarts, period_ms, children = entries[name]
        nodes = tuple(self.build_tree(child, entries) if child in entries else child for child in children)
        return SupervisorSpec(name, strategy, max_restarts, period_ms, nodes)

    def messages(self, value: Any, services: Mapping[str, ServiceSpec]) -> tuple[MessageSpec, ...]:
        out = []
        for index, item in enumerate(self.array(value, ("messages",))):
            path: KeyPath = ("messages", index)
            entry = self.table(item, path, self.MESSAGE_KEYS)
            to = self.string(self.required(entry, "to", path), (*path, "to"))
            if to not in services:
                raise self.error((*path, "to"), f"unknown service {to!r}")
            tag = self.integer(entry.get("tag", 0), (*path, "tag"), 0, 0xFFFF)
            words = self.array(self.required(entry, "words", path), (*path, "words"))
            if not 1 <= len(words) <= MAX_MESSAGE_WORDS:
                raise self.error((*path, "words"), f"a message carries 1..{MAX_MESSAGE_WORDS} words, not {len(words)}")
            values = tuple(self.integer(word, (*path, "words", i), -(1 << 31), (1 << 32) - 1) & 0xFFFFFFFF
                           for i, word in enumerate(words))
            out.append(MessageSpec(to, tag, values))
        return tuple(out)


def _describe(value: Any) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a float", str: "a string", list: "an array",
             dict: "a table"}
    return f"{kinds.get(type(value), type(value).__name__)} ({value!r})" if not isinstance(value, (dict, list)) \
        else kinds[type(value)]


# -- finding the line of a key path (best effort: standard tables and `key = value` lines) ------------------

_HEADER = re.compile(r"\s*\[(\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def locate(text: str, path: KeyPath) -> int:
    """The 1-based line where key `path` is written in `text`, or 0 if it cannot be found.

    Walks `[table]` / `[[array]]` headers: finds the header that opens the deepest table on the path, then the
    `key =` line inside it; falls back to the table's header line.
    """
    lines = text.splitlines()
    headers: list[tuple[int, tuple[str, ...], bool]] = []  # line index, dotted key, is array-of-tables
    for index, line in enumerate(lines):
        match = _HEADER.match(line)
        if match:
            headers.append((index, tuple(part.strip().strip('"') for part in match[2].split(".")), bool(match[1])))
    keys = tuple(part for part in path if isinstance(part, str))
    best: tuple[int, int] | None = None  # (header line index, keys consumed)
    for prefix_length in range(len(keys), 0, -1):
        prefix = keys[:prefix_length]
        candidates = [h for h in headers if h[1] == prefix]
        if not candidates:
            continue
        position = path.index(prefix[-1]) + 1
        if candidates[0][2] and position < len(path) and isinstance(path[position], int):
            if path[position] >= len(candidates):
                continue
            best = (candidates[path[position]][0], prefix_length)
        else:
            best = (candidates[0][0], prefix_length)
        break
    start = best[0] if best else -1
    rest = keys[best[1]:] if best else keys
    if not rest:
        return start + 1 if best else 0
    key = re.compile(rf"\s*\"?{re.escape(rest[0])}\"?\s*=")
    for index in range(start + 1, len(lines)):
        if _HEADER.match(lines[index]):
            break
        if key.match(lines[index]):
            return index + 1
    return start + 1 if best else 0


def source_label(manifest: Manifest, service: ServiceSpec) -> str:
    """The service's source as the manifest wrote it relative to the manifest's folder, for messages."""
    try:
        return str(service.source.relative_to(manifest.path.resolve().parent))
    except ValueError:
        return str(service.source)

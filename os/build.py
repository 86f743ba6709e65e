"""`tessera build`: compile every service of a manifest for its tile and assemble the runtime image.

    image = build_image(load_manifest("app.toml"))
    write_image(image, "app.tsi")

Each service becomes one tile's memory image, by source kind:
- Python (.py): the service compiler (`tessera.os.service_build`): the tile runtime at 0, the service after it.
- assembly (.s) on the runtime: the source is assembled at the runtime's end, after the runtime; it must begin
  with the service header (`.word init, handle, TILE_MEM_BYTES, __image_end`, docs/manifest.md).
- C (.c) on the runtime: compiled with firmware/include/tessera.h, linked by firmware/c/service.ld after the
  runtime, then checked and loaded as an ELF (`tessera.os.service_native`); a prebuilt `.elf` is loaded the same way.
- bare assembly and bare C (`bare = true`; C with crt0 + firmware/c/tile.ld): a whole image from address 0, no
  runtime.
Every service's state fields (where its state lives, for snapshots) go into its TileImage.
Assembly sources see these constants (defined before their first line): `TILE_MEM_BYTES`, `HOST_NODE`,
`NODE_<name>` for each name in the service's `sends`, and (on the runtime) the runtime's entry points and the
`MSG_*` record offsets.

Permissions: a service may send to the names in its `sends`, to the host (logs, replies to `tessera call`) and to
every service that may send to it (so that it can reply). DOWN messages of every tile go to the host.
The I/O node's built-in services (`led`, `button`: manifest.IO_NAMES) get name-table entries of kind IO when a
service sends to them; they are at `io_address(tiles)` and governed by permission bit `io_permission_bit(tiles)`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from tessera.firmware import cc
from tessera.firmware.asm import AsmError, assemble
from tessera.hw.io_node import io_address, io_permission_bit
from tessera.hw.noc_layouts import HOST_NODE, permission_index
from tessera.os import service_build
from tessera.os.errors import TesseraError
from tessera.os.image import ChipParams, InitialMessage, NameEntry, NameKind, RuntimeImage, StateField, TileImage
from tessera.os.manifest import HOST_NAME, IO_NAMES, Manifest, ServiceSpec, SourceKind, source_label
from tessera.os.placement import place
from tessera.os.service_lang import CompileError, check
from tessera.os.service_native import ServiceElfError, load_service_elf

#: Words of the service header an assembly service on the runtime starts with.
SERVICE_HEADER_WORDS = 4


#: One compiled service: memory image from address 0, the service's own bytes, stack bytes, state fields.
Compiled = tuple[bytes, int, int, tuple[StateField, ...]]


class BuildError(TesseraError):
    """A service that does not compile or does not fit its tile."""


def build_image(manifest: Manifest) -> RuntimeImage:
    """Place, compile and link every service; the image the host loads."""
    placement = place(manifest)
    chip = manifest.chip
    used_io = [name for name in IO_NAMES if any(name in spec.sends for spec in manifest.services.values())]
    addresses = {name: placement[name] for name in manifest.services} | {HOST_NAME: HOST_NODE}
    addresses |= {name: io_address(chip.tiles) for name in used_io}
    tiles = []
    for name, tile in sorted(placement.items(), key=lambda item: item[1]):
        service = manifest.services[name]
        memory, code_bytes, stack_bytes, state_fields = _compile(manifest, service, addresses)
        tiles.append(TileImage(
            tile=tile, service=name, kind=service.kind, source=source_label(manifest, service), memory=memory,
            code_bytes=code_bytes, stack_bytes=stack_bytes, permissions=_permissions(manifest, name, addresses),
            supervisor=HOST_NODE, persist=service.persist, bare=service.bare, state_fields=state_fields))
    names = tuple(NameEntry(name, placement[name], NameKind.SERVICE) for name in manifest.services)
    names += (NameEntry(HOST_NAME, HOST_NODE, NameKind.HOST),)
    names += tuple(NameEntry(name, addresses[name], NameKind.IO) for name in used_io)
    messages = tuple(InitialMessage(m.to, placement[m.to], m.tag, m.words) for m in manifest.messages)
    return RuntimeImage(
        app=manifest.name,
        chip=ChipParams(chip.tiles, chip.mem_bytes, chip.mailbox_depth, HOST_NODE),
        tiles=tuple(tiles),
        names=names,
        tree=manifest.tree,
        messages=messages,
        manifest_name=manifest.path.name,
        manifest_text=manifest.text,
    )


def _permissions(manifest: Manifest, name: str, addresses: Mapping[str, int]) -> int:
    """Bit set of the nodes `name` may send to (bit index per `permission_index`)."""
    destinations = {HOST_NAME, *manifest.services[name].sends}
    destinations |= {other for other, spec in manifest.services.items() if name in spec.sends}
    bits = 0
    for destination in destinations:
        if destination in IO_NAMES:
            bits |= 1 << io_permission_bit(manifest.chip.tiles)
            continue
        index = permission_index(addresses[destination], manifest.chip.tiles)
        assert index is not None, f"{destination} at {addresses[destination]} is not a node"
        bits |= 1 << index
    return bits


def _compile(manifest: Manifest, service: ServiceSpec, addresses: Mapping[str, int]) -> Compiled:
    """(memory image from address 0, the service's own bytes, stack bytes, state fields) of one service."""
    if service.kind is SourceKind.PYTHON:
        return _compile_python(manifest, service, addresses)
    if service.kind is SourceKind.ASSEMBLY:
        return _compile_assembly(manifest, service, addresses)
    if service.kind is SourceKind.ELF:
        return _load_elf(manifest, service, service.source.read_bytes())
    if service.bare:
        return _compile_c(manifest, service)
    return _compile_c_service(manifest, service, addresses)


def _error(manifest: Manifest, service: ServiceSpec, problem: str) -> BuildError:
    where = manifest.error(("services", service.name, "source"), problem)
    return BuildError(str(where))


def _display_name(manifest: Manifest, service: ServiceSpec) -> str:
    """The source's path as the user sees it: the manifest's folder (as given) joined with its relative path."""
    return str(manifest.path.parent / source_label(manifest, service))


def _compile_python(manifest: Manifest, service: ServiceSpec, addresses: Mapping[str, int]) -> Compiled:
    filename = _display_name(manifest, service)
    source = service.source.read_text(encoding="utf-8")
    try:
        program = check(source, filename)
        undeclared = sorted(program.destinations - set(service.sends))
        if undeclared:
            raise manifest.error(("services", service.name, "sends"),
                                 f"{filename} sends to {', '.join(map(repr, undeclared))}, which `sends` does not "
                                 f"declare")
        names = {name: addresses[name] for name in service.sends}
        built = service_build.build_service(source, filename, manifest.chip.mem_bytes, names)
    except CompileError as error:
        raise _error(manifest, service, str(error)) from None
    memory = b"".join(word.to_bytes(4, "little") for word in built.words())
    return memory, built.code_bytes, built.stack_bytes, built.state_fields


def _assembly_constants(manifest: Manifest, service: ServiceSpec, addresses: Mapping[str, int]) -> dict[str, int]:
    constants = {"TILE_MEM_BYTES": manifest.chip.mem_bytes, "HOST_NODE": HOST_NODE}
    constants |= {f"NODE_{name}": addresses[name] for name in service.sends}
    if not service.bare:
        runtime = service_build.runtime()
        constants |= {name: runtime.symbols[name] for name in sorted(runtime.globals) if name != "_start"}
        constants |= {name: value for name, value in runtime.symbols.items() if name.startswith("MSG_")}
    return constants


def _compile_assembly(manifest: Manifest, service: ServiceSpec, addresses: Mapping[str, int]) -> Compiled:
    filename = _display_name(manifest, service)
    # The constants go before the source (`li` needs them defined first); errors are moved back to user lines.
    constants = _assembly_constants(manifest, service, addresses)
    prelude = "".join(f".equ {name}, {value:#x}\n" for name, value in constants.items())
    text = prelude + service.source.read_text(encoding="utf-8")
    runtime = b"" if service.bare else service_build.runtime().image
    base = len(runtime)
    try:
        program = assemble(text, filename, base=base)
    except AsmError as error:
        raise _error(manifest, service, _assembly_problem(error, len(constants), service, text)) from None
    if not service.bare:
        _check_header(manifest, service, program.words()[:SERVICE_HEADER_WORDS], base, len(program.image))
    _check_fits(manifest, service, base, len(program.image), service.stack_bytes)
    state = _assembly_state_fields(program.symbols, set(constants))
    return runtime + program.image, len(program.image), service.stack_bytes, state


def _assembly_state_fields(symbols: Mapping[str, int], constants: set[str]) -> tuple[StateField, ...]:
    """The labels from `__state_start` up to `__state_end`, each reaching to the next: the service's state."""
    start, end = symbols.get("__state_start"), symbols.get("__state_end")
    if start is None or end is None:
        return ()
    labels = sorted((address, name) for name, address in symbols.items()
                    if start <= address < end and name not in constants and not name.startswith("__state_"))
    bounds = [address for address, _ in labels[1:]] + [end]
    return tuple(StateField(name, address, bound - address) for (address, name), bound in zip(labels, bounds)
                 if bound > address)


def _assembly_problem(error: AsmError, prelude_lines: int, service: ServiceSpec, text: str) -> str:
    """The assembler's first error, located in the user's source (without the constants put before it); a line
    naming `NODE_x` for an x missing from `sends` says so, since that is the likely cause."""
    location = error.location
    line = location.line - prelude_lines
    if line <= 0:
        return f"{location.filename} (build constants): {error.message}"
    more = f" (and {len(error.errors) - 1} more errors)" if len(error.errors) > 1 else ""
    source_line = text.splitlines()[location.line - 1] if location.line <= len(text.splitlines()) else ""
    undeclared = [name for name in re.findall(r"\bNODE_(\w+)", source_line.split("#")[0])
                  if name not in service.sends]
    if undeclared:
        problem = (f"NODE_{undeclared[0]} is undefined: services.{service.name}.sends does not declare "
                   f"{undeclared[0]!r} ({error.message})")
    else:
        problem = error.message
    return f"{location.filename}:{line}:{location.column}: {problem}{more}"


def _check_header(manifest: Manifest, service: ServiceSpec, header: list[int], base: int, size: int) -> None:
    end = base + size
    valid = (len(header) == SERVICE_HEADER_WORDS
             and all(base <= entry < end and entry % 4 == 0 for entry in header[:2])
             and header[2] == manifest.chip.mem_bytes and header[3] == end)
    if not valid:
        raise _error(manifest, service, f"{_display_name(manifest, service)} must start with the service header "
                                        f"`.word init, handle, TILE_MEM_BYTES, __image_end` with `__image_end:` "
                                        f"as its last line (or set bare = true for a whole-tile program)")


def _check_fits(manifest: Manifest, service: ServiceSpec, runtime: int, code: int, stack: int) -> None:
    need = runtime + code + stack
    if need > manifest.chip.mem_bytes:
        parts = f"{runtime} runtime + {code} code and data + {stack} stack" if runtime else \
            f"{code} code and data + {stack} stack"
        raise _error(manifest, service, f"service {service.name!r} needs {need} bytes ({parts}), "
                                        f"but a tile has {manifest.chip.mem_bytes} bytes")


def _compile_c_service(manifest: Manifest, service: ServiceSpec, addresses: Mapping[str, int]) -> Compiled:
    """A C service on the runtime: tessera.h, linked by service.ld after the runtime, checked as any ELF."""
    defines = {"TILE_MEM_BYTES": manifest.chip.mem_bytes, "HOST_NODE": HOST_NODE}
    defines |= {f"NODE_{name}": addresses[name] for name in service.sends}
    try:
        elf = cc.compile_service_elf(service.source, manifest.chip.mem_bytes, min_stack=service.stack_bytes,
                                     defines=defines)
    except cc.CompileError as error:
        problem = _c_problem(manifest, service, str(error))
        if "does not fit" not in problem:
            raise _error(manifest, service, problem) from None
        try:  # linked without the stack, the ELF check below reports the sizes
            elf = cc.compile_service_elf(service.source, manifest.chip.mem_bytes, min_stack=0, defines=defines)
        except cc.CompileError:
            raise _error(manifest, service, problem) from None
    return _load_elf(manifest, service, elf)


def _load_elf(manifest: Manifest, service: ServiceSpec, elf: bytes) -> Compiled:
    try:
        native = load_service_elf(elf, _display_name(manifest, service), manifest.chip.mem_bytes,
                                  service.stack_bytes)
    except ServiceElfError as error:
        raise _error(manifest, service, str(error)) from None
    return native.memory, native.code_bytes, service.stack_bytes, native.state_fields


def _compile_c(manifest: Manifest, service: ServiceSpec) -> Compiled:
    try:
        image = cc.compile_program(service.source, manifest.chip.mem_bytes, min_stack=service.stack_bytes)
    except cc.CompileError as error:
        raise _error(manifest, service, _c_problem(manifest, service, str(error))) from None
    _check_fits(manifest, service, 0, len(image.data), service.stack_bytes)
    return image.data, len(image.data), service.stack_bytes, ()


def _c_problem(manifest: Manifest, service: ServiceSpec, diagnostics: str) -> str:
    """One line out of GCC's diagnostics: the size problem the linker found, or the first error."""
    lines = [line.strip() for line in diagnostics.splitlines() if line.strip()]
    overflow = next((line for line in lines if "overflowed by" in line), None)
    if overflow is not None or any("does not fit tile memory" in line for line in lines):
        detail = f" (the linker: {overflow.split(': ', 1)[-1]})" if overflow else ""
        return (f"service {service.name!r} does not fit a {manifest.chip.mem_bytes}-byte tile with "
                f"{service.stack_bytes} bytes of stack{detail}")
    if any("undefined symbol `handle'" in line for line in lines):
        return (f"{_display_name(manifest, service)}: symbol `handle`: missing: a service defines "
                f"`void handle(const tessera_msg *msg)`")
    errors = [line for line in lines if ": error:" in line or ": fatal error:" in line]
    first = errors[0] if errors else lines[-1] if lines else "the C compiler failed"
    more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
    return f"{first}{more}"

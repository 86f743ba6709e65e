"""Services in C and assembly on the tile runtime, and prebuilt ELF services: from an ELF file to a tile image.

A C service (`.c`) is compiled by `tessera.firmware.cc.compile_service_elf` with firmware/include/tessera.h and
linked by firmware/c/service.ld right after the runtime; a prebuilt `.elf` must have been linked the same way.
Both then go through `load_service_elf`, which reads the ELF with `tessera.firmware.elf` and checks everything the
runtime relies on before anything reaches a tile: RV32I / ilp32, the entry is the service header at the end of the
runtime, `handle` exists, the header words are right, every section lies inside the tile after the runtime, and
image plus stack fit. The objects in the state section (`TESSERA_STATE`) become the service's state fields.

firmware/c/runtime.ld gives C the runtime's addresses; `runtime_linker_script()` regenerates it from
firmware/runtime.s (tests/test_services_c_asm.py checks the file is current).
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.firmware import elf
from tessera.firmware.cc import C_DIR
from tessera.os.codegen_support import HEADER_BYTES
from tessera.os.image import StateField
from tessera.os.service_build import runtime

RUNTIME_LINKER_SCRIPT = C_DIR / "runtime.ld"
#: Runtime symbols a C service may call (the runtime's globals other than its start-up code).
RUNTIME_ENTRY_POINTS = ("rt_receive", "rt_receive_timeout", "rt_sleep", "rt_fault")


class ServiceElfError(ValueError):
    """An ELF service that cannot run on a tile: the message names the file and what is wrong."""


@dataclass(frozen=True)
class NativeService:
    """A C or ELF service placed after the runtime."""

    memory: bytes  # runtime and service, from address 0
    code_bytes: int  # the service's own bytes: header, code, data
    state_fields: tuple[StateField, ...]


def runtime_linker_script() -> str:
    """The text of firmware/c/runtime.ld: where the service starts and the runtime's entry points."""
    symbols = runtime().symbols
    lines = ["/* Generated from firmware/runtime.s by tessera.os.service_native.runtime_linker_script(): the tile",
             " * runtime's addresses for C services (service.ld includes this file). Do not edit by hand. */",
             f"__service_base = {symbols['runtime_end']:#x};"]
    lines += [f"{name} = {symbols[name]:#x};" for name in RUNTIME_ENTRY_POINTS]
    return "\n".join(lines) + "\n"


def load_service_elf(data: bytes, filename: str, mem_bytes: int, min_stack: int) -> NativeService:
    """Check a service ELF (linked with service.ld for a tile of mem_bytes) and build its tile image."""

    def fail(problem: str) -> ServiceElfError:
        return ServiceElfError(f"{filename}: {problem}")

    try:
        program = elf.read_elf(data, filename)
    except elf.ElfError as error:
        raise ServiceElfError(str(error)) from None
    rt = runtime()
    base = rt.symbols["runtime_end"]
    if program.entry != base:
        raise fail(f"e_entry: {program.entry:#x}, not {base:#x} (the service header right after the runtime): "
                   f"link with firmware/c/service.ld")
    handle = program.symbols.get("handle")
    if handle is None or not handle.defined:
        raise fail("symbol `handle`: missing: a service defines `void handle(const tessera_msg *msg)`")
    end_symbol = program.symbols.get("__image_end")
    if end_symbol is None:
        raise fail("symbol `__image_end`: missing: link with firmware/c/service.ld")
    for section in program.sections:
        if section.address < base or section.address + len(section.data) > mem_bytes:
            raise fail(f"section {section.name}: {len(section.data)} bytes at {section.address:#x} lie outside the "
                       f"service's part of a {mem_bytes}-byte tile ({base:#x} .. {mem_bytes:#x})")
    end = max([end_symbol.address] + [s.address + len(s.data) for s in program.sections])
    if end + min_stack > mem_bytes:
        raise fail(f"does not fit a {mem_bytes}-byte tile: {base} bytes of runtime + {end - base} bytes of code "
                   f"and data + {min_stack} bytes of stack = {end + min_stack}")
    image = bytearray(end - base)
    for section in program.sections:
        image[section.address - base:section.address - base + len(section.data)] = section.data
    header = [int.from_bytes(image[i:i + 4].ljust(4, b"\0"), "little") for i in range(0, HEADER_BYTES, 4)]
    expected = [header[0], handle.address, mem_bytes, end_symbol.address]
    if header != expected or not base + HEADER_BYTES <= header[0] < end:
        raise fail(f"the service header at {base:#x} is {_words(header)}, expected init, handle = "
                   f"{handle.address:#x}, {mem_bytes:#x}, {end_symbol.address:#x}: link with firmware/c/service.ld "
                   f"for a {mem_bytes}-byte tile")
    return NativeService(rt.image + bytes(image), len(image), _state_fields(program))


def _words(words: list[int]) -> str:
    return ", ".join(f"{word:#x}" for word in words)


def _state_fields(program: elf.Elf) -> tuple[StateField, ...]:
    """The sized objects between __state_start and __state_end, by address."""
    start, end = program.symbols.get("__state_start"), program.symbols.get("__state_end")
    if start is None or end is None:
        return ()
    objects = sorted((symbol.address, symbol.size, name) for name, symbol in program.symbols.items()
                     if symbol.kind == elf.STT_OBJECT and symbol.size and start.address <= symbol.address < end.address)
    return tuple(StateField(name, address, size) for address, size, name in objects)

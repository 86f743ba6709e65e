"""A small reader for the ELF32 executables a Tessera tile can run: RISC-V, little-endian, ilp32, no RVC.

`read_elf(data, filename)` checks the file header and returns its loadable sections (address, bytes) and its
symbols (address, size, type). Anything a tile cannot run is refused with `ElfError` naming the file and the
header field at fault, e.g. `echo.elf: e_machine: 62 (x86-64), not 243 (RISC-V)`.
The reference is the System V ABI's ELF chapter and the RISC-V ELF psABI (e_flags); this is our own code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"\x7fELF"
ELFCLASS32 = 1
ELFDATA2LSB = 1
EV_CURRENT = 1
ET_EXEC = 2
EM_RISCV = 243
#: e_flags bits of the RISC-V psABI.
EF_RISCV_RVC = 0x1
EF_RISCV_FLOAT_ABI = 0x6
EF_RISCV_RVE = 0x8
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHF_ALLOC = 0x2
STT_OBJECT = 1
STT_FUNC = 2
SHN_UNDEF = 0

_HEADER = struct.Struct("<16sHHIIIIIHHHHHH")
_SECTION = struct.Struct("<IIIIIIIIII")
_SYMBOL = struct.Struct("<IIIBBH")
_MACHINES = {3: "x86", 8: "MIPS", 40: "ARM", 62: "x86-64", 183: "AArch64", EM_RISCV: "RISC-V"}


class ElfError(ValueError):
    """An ELF file a tile cannot run; the message names the file and the field."""


@dataclass(frozen=True)
class Section:
    name: str
    address: int
    data: bytes  # zeros for a NOBITS section
    nobits: bool


@dataclass(frozen=True)
class ElfSymbol:
    address: int
    size: int
    kind: int  # STT_*
    defined: bool


@dataclass(frozen=True)
class Elf:
    entry: int
    sections: tuple[Section, ...]  # the SHF_ALLOC sections with a size, by address
    symbols: dict[str, ElfSymbol]


def read_elf(data: bytes, filename: str) -> Elf:
    """Parse and check an ELF32 RISC-V ilp32 executable."""

    def fail(field: str, problem: str) -> ElfError:
        return ElfError(f"{filename}: {field}: {problem}")

    if len(data) < _HEADER.size or data[:4] != MAGIC:
        raise fail("e_ident", "not an ELF file (no \\x7fELF magic)")
    (ident, e_type, e_machine, e_version, e_entry, _phoff, e_shoff, e_flags, _ehsize, _phentsize, _phnum,
     e_shentsize, e_shnum, e_shstrndx) = _HEADER.unpack_from(data)
    if ident[4] != ELFCLASS32:
        raise fail("EI_CLASS", f"{ident[4]} ({'64-bit' if ident[4] == 2 else 'unknown'}), not 1 (32-bit): "
                               f"build with -march=rv32i -mabi=ilp32")
    if ident[5] != ELFDATA2LSB:
        raise fail("EI_DATA", f"{ident[5]}, not 1 (little-endian)")
    if e_machine != EM_RISCV:
        raise fail("e_machine", f"{e_machine} ({_MACHINES.get(e_machine, 'unknown')}), not {EM_RISCV} (RISC-V)")
    if e_version != EV_CURRENT:
        raise fail("e_version", f"{e_version}, not {EV_CURRENT}")
    if e_type != ET_EXEC:
        raise fail("e_type", f"{e_type}, not {ET_EXEC} (a linked executable): link with firmware/c/service.ld")
    if e_flags & EF_RISCV_FLOAT_ABI:
        raise fail("e_flags", f"{e_flags:#x}: a hard-float ABI; tiles need -mabi=ilp32 (soft float)")
    if e_flags & EF_RISCV_RVE:
        raise fail("e_flags", f"{e_flags:#x}: the RV32E ABI (ilp32e); tiles need -mabi=ilp32")
    if e_flags & EF_RISCV_RVC:
        raise fail("e_flags", f"{e_flags:#x}: compressed instructions (RVC); tiles run RV32I: -march=rv32i")
    if e_shentsize != _SECTION.size or e_shoff + e_shnum * _SECTION.size > len(data) or e_shstrndx >= e_shnum:
        raise fail("e_shoff", "the section header table is missing or runs past the end of the file")
    headers = [_SECTION.unpack_from(data, e_shoff + i * _SECTION.size) for i in range(e_shnum)]

    def contents(index: int) -> bytes:
        _, kind, _, _, offset, size, *_ = headers[index]
        if kind == SHT_NOBITS:
            return bytes(size)
        if offset + size > len(data):
            raise fail("sh_offset", f"section {index} runs past the end of the file")
        return data[offset:offset + size]

    names = contents(e_shstrndx)
    sections = []
    symbols: dict[str, ElfSymbol] = {}
    for index, (name, kind, flags, address, _, size, link, *_) in enumerate(headers):
        if flags & SHF_ALLOC and size:
            sections.append(Section(_string(names, name), address, contents(index), kind == SHT_NOBITS))
        if kind == SHT_SYMTAB:
            if link >= e_shnum:
                raise fail("sh_link", f"symbol table {index} names no string table")
            strings, table = contents(link), contents(index)
            for offset in range(0, len(table) - _SYMBOL.size + 1, _SYMBOL.size):
                st_name, value, st_size, info, _, shndx = _SYMBOL.unpack_from(table, offset)
                if st_name:
                    symbols[_string(strings, st_name)] = ElfSymbol(value, st_size, info & 0xF, shndx != SHN_UNDEF)
    return Elf(e_entry, tuple(sorted(sections, key=lambda s: s.address)), symbols)


def _string(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    return table[offset:end if end >= 0 else len(table)].decode("utf-8", "replace")

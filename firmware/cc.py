"""Compile C programs for a Tessera tile into a flat memory image plus its symbol table.

`compile_program("crc32")` builds firmware/c/crc32.c with firmware/c/crt0.s and firmware/c/tile.ld:
text from address 0 (the reset pc), then read-only data, data, .bss, and the stack at the top of `mem_bytes`.
The result is the `objcopy -O binary` image (what the host loads from address 0) and every symbol's address
and size, so tests and the host can find a program's inputs and outputs in tile memory.

The compiler is Debian's riscv64-unknown-elf-gcc 12 with `-march=rv32i -mabi=ilp32 -Os -nostdlib
-ffreestanding`; libgcc is linked for the multiply/divide helpers that RV32I lacks.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

C_DIR = Path(__file__).resolve().parent / "c"
CRT0 = C_DIR / "crt0.s"
LINKER_SCRIPT = C_DIR / "tile.ld"
#: Services on the tile runtime: linked after it by service.ld (which includes runtime.ld), with tessera.h.
SERVICE_LINKER_SCRIPT = C_DIR / "service.ld"
INCLUDE_DIR = Path(__file__).resolve().parent / "include"
TOOL_PREFIX = "riscv64-unknown-elf-"

#: The tile's base ISA. GCC 12 puts CSR instructions in the separate zicsr extension: a program that reads
#: CSRs with inline asm passes march="rv32i_zicsr".
DEFAULT_MARCH = "rv32i"
CFLAGS = ("-mabi=ilp32", "-Os", "-nostdlib", "-ffreestanding", "-fno-pic", "-Wall", "-Wextra", "-Werror")
#: Bytes that must stay free for the stack between the end of .bss and the top of memory.
DEFAULT_MIN_STACK = 256


class CompileError(RuntimeError):
    """The toolchain rejected a program; the message holds its diagnostics (file:line:column: ...)."""


@dataclass(frozen=True)
class Symbol:
    address: int
    size: int  # 0 when the object file does not record one (labels in assembly)


@dataclass(frozen=True)
class Image:
    """A linked program: the bytes to load at address 0, and where its symbols are."""

    data: bytes
    symbols: dict[str, Symbol]
    mem_bytes: int

    def words(self) -> list[int]:
        """The image as little-endian 32-bit words (padded with zero bytes to a whole word)."""
        padded = self.data + bytes(-len(self.data) % 4)
        return [int.from_bytes(padded[i : i + 4], "little") for i in range(0, len(padded), 4)]

    def address(self, name: str) -> int:
        try:
            return self.symbols[name].address
        except KeyError:
            raise KeyError(f"symbol {name!r} is not in the image") from None

    def initial_bytes(self, name: str) -> bytes:
        """The initial contents of an object in .rodata/.data (needs the symbol's size)."""
        symbol = self.symbols[name]
        if symbol.address + symbol.size > len(self.data):
            raise ValueError(f"symbol {name!r} lies outside the loaded image (in .bss?)")
        return self.data[symbol.address : symbol.address + symbol.size]


def toolchain_available() -> bool:
    return shutil.which(TOOL_PREFIX + "gcc") is not None


def _run(command: Sequence[str]) -> str:
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise CompileError(f"{command[0]} not found: install gcc-riscv64-unknown-elf (see the Makefile)") from None
    if result.returncode:
        raise CompileError(f"{Path(command[0]).name} failed:\n{result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def source_path(program: str | Path) -> Path:
    """A program name in firmware/c ("crc32") or a path to a C file."""
    path = Path(program)
    if path.suffix != ".c":
        path = C_DIR / f"{program}.c"
    if not path.is_file():
        raise FileNotFoundError(f"C program {str(program)!r} not found (looked for {path})")
    return path


def compile_program(
    program: str | Path,
    mem_bytes: int = 4096,
    *,
    march: str = DEFAULT_MARCH,
    min_stack: int = DEFAULT_MIN_STACK,
    extra_sources: Sequence[Path] = (),
) -> Image:
    """Compile and link one C program (plus optional extra C/assembly sources) for a tile of `mem_bytes`."""
    if mem_bytes < 1024 or mem_bytes & (mem_bytes - 1):
        raise ValueError(f"mem_bytes must be a power of two >= 1024, not {mem_bytes}")
    sources = [CRT0, source_path(program), *extra_sources]
    with tempfile.TemporaryDirectory(prefix="tessera-cc-") as temp:
        elf = Path(temp) / "program.elf"
        binary = Path(temp) / "program.bin"
        _run(
            [
                TOOL_PREFIX + "gcc",
                f"-march={march}",
                *CFLAGS,
                "-T",
                str(LINKER_SCRIPT),
                f"-Wl,--defsym=__mem_bytes={mem_bytes}",
                f"-Wl,--defsym=__min_stack={min_stack}",
                "-Wl,--no-warn-rwx-segments",  # one RAM holds code and data by design
                "-o",
                str(elf),
                *map(str, sources),
                "-lgcc",
            ]
        )
        _run([TOOL_PREFIX + "objcopy", "-O", "binary", str(elf), str(binary)])
        data = binary.read_bytes()
        symbols = _symbols(_run([TOOL_PREFIX + "nm", "-S", "--defined-only", str(elf)]))
    return Image(data=data, symbols=symbols, mem_bytes=mem_bytes)


def compile_service_elf(source: Path, mem_bytes: int, *, min_stack: int, defines: dict[str, int],
                        march: str = DEFAULT_MARCH) -> bytes:
    """Compile a C service and link it after the tile runtime (service.ld); the ELF executable's bytes.

    `defines` become `-DNAME=value` (the build passes TILE_MEM_BYTES, HOST_NODE and NODE_<name>).
    """
    with tempfile.TemporaryDirectory(prefix="tessera-cc-") as temp:
        elf = Path(temp) / "service.elf"
        _run([TOOL_PREFIX + "gcc", f"-march={march}", *CFLAGS, "-I", str(INCLUDE_DIR),
              *(f"-D{name}={value}" for name, value in defines.items()),
              "-L", str(C_DIR), "-T", str(SERVICE_LINKER_SCRIPT),
              f"-Wl,--defsym=__mem_bytes={mem_bytes}", f"-Wl,--defsym=__min_stack={min_stack}",
              "-Wl,--no-warn-rwx-segments", "-o", str(elf), str(source), "-lgcc"])
        return elf.read_bytes()


def _symbols(nm_output: str) -> dict[str, Symbol]:
    """Parse `nm -S` lines: 'address [size] type name'."""
    symbols: dict[str, Symbol] = {}
    for line in nm_output.splitlines():
        fields = line.split()
        if len(fields) == 4:
            address, size, _kind, name = fields
            symbols[name] = Symbol(int(address, 16), int(size, 16))
        elif len(fields) == 3:
            address, _kind, name = fields
            symbols.setdefault(name, Symbol(int(address, 16), 0))
    return symbols

"""The Tessera RV32I assembler: GNU `as` syntax in, a flat memory image out.

    program = assemble(source, filename="boot.s", base=0)
    program.image      # bytes from `base`: .text, then .data, then .bss (zeros), each section aligned
    program.words()    # the image as little-endian 32-bit words
    program.symbols    # label and constant values
    program.listing    # address, bytes and source of every line

Two passes: the first parses every line, fixes every statement's size and so every label's section offset;
the sections are then laid out; the second pass evaluates expressions and encodes. Errors carry
`file:line:column`; the raised `AsmError` lists every error found in its `errors`.

Command line: `python -m tessera.firmware.asm file.s -o out.bin --listing out.lst --symbols [out.sym]`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tessera.firmware.asm_directives import (
    SECTIONS,
    Directed,
    DirectiveContext,
    code_fill,
    run_assignment,
    run_directive,
)
from tessera.firmware.asm_errors import AsmError, DirectiveError
from tessera.firmware.asm_forms import match_form
from tessera.firmware.asm_lexer import Statement, parse_source
from tessera.firmware.asm_symbols import FinalEnvironment, LayoutEnvironment, Position, SymbolTable
from tessera.firmware.isa import MASK32

__all__ = ["AsmError", "Program", "assemble", "main"]


@dataclass(frozen=True)
class Program:
    """An assembled program. `sections` maps text/data/bss to (start address, size in bytes)."""

    image: bytes
    base: int
    symbols: dict[str, int]
    listing: str
    sections: dict[str, tuple[int, int]]
    globals: frozenset[str] = frozenset()

    def words(self) -> list[int]:
        """The image as little-endian 32-bit words (the last one zero-padded)."""
        padded = self.image + b"\0" * (-len(self.image) % 4)
        return [int.from_bytes(padded[i : i + 4], "little") for i in range(0, len(padded), 4)]

    def symbol_table(self) -> str:
        """`address name` lines, by address."""
        rows = sorted(self.symbols.items(), key=lambda item: (item[1] & MASK32, item[0]))
        return "".join(f"{value & MASK32:08x} {name}\n" for name, value in rows)


@dataclass
class _Item:
    """A statement placed by the first pass."""

    statement: Statement
    position: Position
    size: int = 0
    emit: Callable[[FinalEnvironment], bytes] | None = None
    code: bool = False  # list as instruction words rather than bytes


@dataclass
class _Assembler:
    base: int
    table: SymbolTable = field(default_factory=SymbolTable)
    errors: list[AsmError] = field(default_factory=list)
    globals: set[str] = field(default_factory=set)

    def layout(self, statements: list[Statement]) -> tuple[list[_Item], dict[str, int], dict[str, int]]:
        """First pass: place every statement. Returns the items, section sizes and section alignments."""
        sizes = dict.fromkeys(SECTIONS, 0)
        alignments = dict.fromkeys(SECTIONS, 4)
        env = LayoutEnvironment(self.table, Position("text", 0, 0))
        ctx = DirectiveContext(self.table, env, "text", self.globals)
        items: list[_Item] = []
        for stmt in statements:
            section = ctx.section
            for label in stmt.labels:
                try:
                    self.table.define_label(label.text, section, sizes[section], label.location)
                except AsmError as e:
                    self.errors.append(e)
            env.position = Position(section, sizes[section], self.table.local_count)
            item = _Item(stmt, env.position)
            try:
                self._place(stmt, item, ctx, env, alignments)
            except AsmError as e:
                self.errors.append(e)
            items.append(item)
            sizes[section] += item.size
        return items, sizes, alignments

    def _place(
        self, stmt: Statement, item: _Item, ctx: DirectiveContext, env: LayoutEnvironment, alignments: dict[str, int]
    ) -> None:
        if stmt.kind == "instruction":
            assert stmt.name_token is not None
            form, args = match_form(stmt.name_token, stmt.operands)
            if ctx.section == "bss":
                raise DirectiveError(stmt.name_token.location, "instructions cannot go in .bss, which holds only zeros")
            words = form.words if isinstance(form.words, int) else form.words(args, env)
            item.size, item.code = 4 * words, True
            item.emit = lambda final: b"".join(w.to_bytes(4, "little") for w in form.expand(args, final))
            return
        if stmt.kind == "empty":
            return
        directed: Directed = run_directive(ctx, stmt) if stmt.kind == "directive" else run_assignment(ctx, stmt)
        item.size, item.emit = directed.size, directed.emit
        alignments[item.position.section] = max(alignments[item.position.section], directed.alignment)

    def encode(self, items: list[_Item], starts: dict[str, int], total: int) -> tuple[bytes, list[str]]:
        """Second pass: the image (from `base`) and the listing lines."""
        image = bytearray(total)
        env = FinalEnvironment(self.table, starts)
        listing: list[str] = []
        last_line = 0
        for item in items:
            env.position = item.position
            stmt = item.statement
            if stmt.name_token is not None:
                env.location = stmt.name_token.location
            data = b""
            if item.emit is not None:
                try:
                    data = item.emit(env)
                except AsmError as e:
                    self.errors.append(e)
                    data = bytes(item.size)
            assert len(data) == item.size, f"line {stmt.line}: {len(data)} bytes, {item.size} reserved in pass 1"
            address = env.pc
            image[address - self.base : address - self.base + len(data)] = data
            source = stmt.source if stmt.line != last_line else ""
            last_line = stmt.line
            placed = stmt.kind != "empty" or bool(stmt.labels)
            listing += _listing_lines(address, data, item.code, stmt.line, source, placed)
        return bytes(image), listing


_BYTES_PER_LINE = 8
_MAX_DATA_ROWS = 4  # a large .space or table is shown by its start


def _listing_lines(address: int, data: bytes, code: bool, line: int, source: str, placed: bool) -> list[str]:
    """Listing rows: `address  hex  line  source`; instructions as 32-bit words, data as bytes."""
    if code:
        chunks = [f"{int.from_bytes(data[i : i + 4], 'little'):08x}" for i in range(0, len(data), 4)]
        step = 4
    else:
        step = _BYTES_PER_LINE
        chunks = [" ".join(f"{b:02x}" for b in data[i : i + step]) for i in range(0, len(data), step)]
    chunks = chunks or [""]
    rows = []
    for n, chunk in enumerate(chunks[:_MAX_DATA_ROWS] if not code else chunks):
        addr = f"{address + n * step:08x}" if placed else " " * 8
        text = f"{line:5d}  {source}" if n == 0 else ""
        rows.append(f"{addr}  {chunk:<23}  {text}".rstrip())
    if not code and len(chunks) > _MAX_DATA_ROWS:
        rows.append(f"{' ' * 8}  ... {len(data)} bytes in all")
    return rows


def _align_up(value: int, alignment: int) -> int:
    return -(-value // alignment) * alignment


def assemble(source: str, filename: str = "<input>", base: int = 0) -> Program:
    """Assemble GNU-syntax RV32I source into a flat image starting at `base`.

    Raises the first `AsmError` (in source order) with all errors found in its `errors` attribute, and
    ValueError if `base` is not aligned to the .text section's alignment."""
    asm = _Assembler(base)
    statements, syntax_errors = parse_source(source, filename)
    asm.errors.extend(syntax_errors)
    items, sizes, alignments = asm.layout(statements)
    _raise_errors(asm.errors)
    if base % alignments["text"] or base < 0:
        raise ValueError(f"base {base:#x} is not a multiple of the .text alignment {alignments['text']}")
    # Like GNU `as`, pad the end of the code to the section's alignment with code fill.
    text_fill = code_fill(-sizes["text"] % alignments["text"])
    sizes["text"] += len(text_fill)
    starts = {"text": base}
    starts["data"] = _align_up(starts["text"] + sizes["text"], alignments["data"])
    starts["bss"] = _align_up(starts["data"] + sizes["data"], alignments["bss"])
    # The image ends with the last section that has contents (no padding after it).
    last = next((name for name in reversed(SECTIONS) if sizes[name]), "text")
    end = starts[last] + sizes[last]
    image, listing = asm.encode(items, starts, end - base)
    text_end = base + sizes["text"]
    image = image[: text_end - len(text_fill) - base] + text_fill + image[text_end - base :]
    _raise_errors(asm.errors)
    env = FinalEnvironment(asm.table, starts)
    symbols = {name: env.symbol(name, label.location).offset for name, label in asm.table.labels.items()}
    for name, constant in asm.table.constants.items():
        symbols[name] = env.symbol(name, constant.location).offset
    return Program(
        image=image,
        base=base,
        symbols=symbols,
        listing="\n".join(listing) + "\n",
        sections={name: (starts[name], sizes[name]) for name in SECTIONS},
        globals=frozenset(asm.globals),
    )


def _raise_errors(errors: list[AsmError]) -> None:
    if not errors:
        return
    ordered = sorted(errors, key=lambda e: (e.location.line, e.location.column))
    first = ordered[0]
    first.errors = tuple(ordered)
    raise first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tessera.firmware.asm", description="Tessera RV32I assembler")
    parser.add_argument("source", type=Path, help="assembly source (GNU as syntax)")
    parser.add_argument("-o", "--output", type=Path, help="flat binary image to write")
    parser.add_argument("--hex", type=Path, help="also write the image as 32-bit hex words, one per line ($readmemh)")
    parser.add_argument("--listing", type=Path, help="listing file to write")
    parser.add_argument(
        "--symbols", nargs="?", const="-", metavar="FILE", help="write the symbol table (to stdout without FILE)"
    )
    parser.add_argument("--base", type=lambda s: int(s, 0), default=0, help="load address of the image (default 0)")
    args = parser.parse_args(argv)
    try:
        program = assemble(args.source.read_text(), str(args.source), args.base)
    except AsmError as e:
        for error in e.errors:
            print(error, file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.output:
        args.output.write_bytes(program.image)
    if args.hex:
        args.hex.write_text("".join(f"{w:08x}\n" for w in program.words()))
    if args.listing:
        args.listing.write_text(program.listing)
    if args.symbols == "-":
        sys.stdout.write(program.symbol_table())
    elif args.symbols:
        Path(args.symbols).write_text(program.symbol_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())

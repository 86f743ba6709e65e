"""Assembler directives (first pass): each one returns how many bytes it takes and how to produce them.

Sizes are settled in the first pass; the bytes are produced in the second pass by the returned emitter, so
data may refer to labels defined later. Values a size depends on (`.zero` counts, alignments) must be
constants defined before use, as in GNU `as`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from tessera.firmware.asm_errors import DirectiveError, OperandError, SourceLocation
from tessera.firmware.asm_expr import Unresolved, Value, evaluate, parse_expression
from tessera.firmware.asm_forms import Imm
from tessera.firmware.asm_lexer import Operand, Statement
from tessera.firmware.asm_symbols import Constant, FinalEnvironment, LayoutEnvironment, SymbolTable

Emitter = Callable[[FinalEnvironment], bytes]

SECTIONS = ("text", "data", "bss")
NOP = (0x00000013).to_bytes(4, "little")
MAX_ALIGN_LOG2 = 16


@dataclass
class Directed:
    """A directive's effect on the layout: bytes taken, their emitter, and the alignment it needs."""

    size: int = 0
    emit: Emitter | None = None
    alignment: int = 1


@dataclass
class DirectiveContext:
    """What a directive may look at and change in the first pass."""

    table: SymbolTable
    env: LayoutEnvironment
    section: str
    globals: set[str]


_DATA_WIDTHS = {
    ".byte": 1,
    ".half": 2,
    ".short": 2,
    ".2byte": 2,
    ".word": 4,
    ".long": 4,
    ".int": 4,
    ".4byte": 4,
    ".dword": 8,
    ".quad": 8,
    ".8byte": 8,
}


def _expressions(stmt: Statement) -> list[Imm]:
    return [Imm(parse_expression(op.tokens, op.location), op.location) for op in stmt.operands]


def _count(stmt: Statement, lo: int, hi: int) -> None:
    n = len(stmt.operands)
    if not lo <= n <= hi:
        expected = str(lo) if lo == hi else f"{lo} to {hi}"
        assert stmt.name_token is not None
        raise OperandError(stmt.name_token.location, f"'{stmt.name}' takes {expected} operand(s), got {n}")


def _name(op: Operand) -> str:
    if len(op.tokens) != 1 or op.tokens[0].kind != "ident":
        raise OperandError(op.location, f"expected a symbol name, found '{op.text}'")
    return op.tokens[0].text


def _data(ctx: DirectiveContext, stmt: Statement) -> Directed:
    width = _DATA_WIDTHS[stmt.name]
    values = _expressions(stmt)
    lo, hi = -(1 << (8 * width - 1)), (1 << (8 * width)) - 1

    def emit(env: FinalEnvironment) -> bytes:
        out = bytearray()
        start = env.position
        for arg in values:
            env.position = replace(start, offset=start.offset + len(out))  # `.` is where this value goes
            value = env.check_range(arg, env.value(arg), lo, hi, f"{stmt.name} value")
            out += (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
        env.position = start
        return bytes(out)

    return Directed(width * len(values), emit)


def _strings(ctx: DirectiveContext, stmt: Statement) -> Directed:
    data = bytearray()
    for op in stmt.operands:
        if len(op.tokens) != 1 or op.tokens[0].kind != "string":
            raise OperandError(op.location, f"'{stmt.name}' expects string literals, found '{op.text}'")
        value = op.tokens[0].value
        assert isinstance(value, bytes)
        data += value + (b"\0" if stmt.name in (".asciz", ".string") else b"")
    frozen = bytes(data)
    return Directed(len(frozen), lambda env: frozen)


def _fill_byte(ctx: DirectiveContext, op: Operand | None) -> int | None:
    """An optional fill operand (absent or empty = None), checked to be a byte."""
    if op is None or not op.tokens:
        return None
    value = ctx.env.require_constant(Imm(parse_expression(op.tokens, op.location), op.location), "fill value")
    if not -128 <= value <= 255:
        raise OperandError(op.location, f"fill value {value} out of range [-128, 255]")
    if value and ctx.section == "bss":
        raise DirectiveError(op.location, "a non-zero fill in .bss, which holds only zeros")
    return value & 0xFF


def _zero(ctx: DirectiveContext, stmt: Statement) -> Directed:
    _count(stmt, 1, 2)
    first = stmt.operands[0]
    count = ctx.env.require_constant(Imm(parse_expression(first.tokens, first.location), first.location), "size")
    if count < 0:
        raise OperandError(first.location, f"size {count} is negative")
    fill = _fill_byte(ctx, stmt.operands[1] if len(stmt.operands) > 1 else None) or 0
    data = bytes([fill]) * count
    return Directed(count, lambda env: data)


def _fill(ctx: DirectiveContext, stmt: Statement) -> Directed:
    """`.fill repeat, size, value`: `repeat` copies of `value` in `size` (1, 2 or 4) bytes."""
    _count(stmt, 1, 3)
    args = _expressions(stmt)
    repeat = ctx.env.require_constant(args[0], "repeat count")
    size = ctx.env.require_constant(args[1], "size") if len(args) > 1 else 1
    if repeat < 0:
        raise OperandError(args[0].location, f"repeat count {repeat} is negative")
    if size not in (1, 2, 4):
        raise OperandError(args[1].location, f"fill size {size} must be 1, 2 or 4")
    value_arg: Imm | int = args[2] if len(args) > 2 else 0

    def emit(env: FinalEnvironment) -> bytes:
        value = env.value(value_arg) & ((1 << (8 * size)) - 1)
        return value.to_bytes(size, "little") * repeat

    return Directed(repeat * size, emit)


def _align(ctx: DirectiveContext, stmt: Statement) -> Directed:
    """`.align`/`.p2align n[, fill[, max]]` (2**n bytes: RISC-V `.align` is a power of two) and
    `.balign n[, fill[, max]]` (n bytes). Code sections are padded like GNU `as`: a zero byte if the gap is
    odd, a 2-byte `c.nop` if still needed, then 4-byte `nop`s."""
    _count(stmt, 1, 3)
    first = stmt.operands[0]
    amount = ctx.env.require_constant(Imm(parse_expression(first.tokens, first.location), first.location), "alignment")
    if stmt.name == ".balign":
        if amount <= 0 or amount & (amount - 1) or amount > 1 << MAX_ALIGN_LOG2:
            raise OperandError(first.location, f"alignment {amount} is not a power of two up to {1 << MAX_ALIGN_LOG2}")
        boundary = amount
    else:
        if not 0 <= amount <= MAX_ALIGN_LOG2:
            raise OperandError(first.location, f"alignment {amount} out of range [0, {MAX_ALIGN_LOG2}]")
        boundary = 1 << amount
    fill = _fill_byte(ctx, stmt.operands[1] if len(stmt.operands) > 1 else None)
    limit = None
    if len(stmt.operands) > 2:
        op = stmt.operands[2]
        limit = ctx.env.require_constant(Imm(parse_expression(op.tokens, op.location), op.location), "maximum")
    gap = -ctx.env.position.offset % boundary
    if limit is not None and gap > limit:
        return Directed()
    data = bytes([fill or 0]) * gap if fill is not None or ctx.section != "text" else code_fill(gap)
    return Directed(gap, lambda env: data, boundary)


def code_fill(gap: int) -> bytes:
    """GNU's padding in code: a zero byte if the gap is odd, a 2-byte `c.nop` if still needed, then `nop`s.
    (Execution never reaches the first two: a tile only runs word-aligned code.)"""
    return b"\0" * (gap % 2) + (b"\x01\x00" if gap % 4 >= 2 else b"") + NOP * (gap // 4)


def _assign(ctx: DirectiveContext, name: str, name_location: SourceLocation, value_op: Operand) -> Directed:
    """`.equ name, expr`, `.set name, expr`, `name = expr`: may be redefined; later lines see the new value."""
    if name.isdigit() or name == ".":
        raise DirectiveError(name_location, f"cannot assign to '{name}'")
    expr = parse_expression(value_op.tokens, value_op.location)
    env = ctx.env
    constant = Constant(expr, name_location, env.dot(), env.position.seq)
    ctx.table.define_constant(name, constant)
    constant.value = _try_value(env, constant)

    def emit(final: FinalEnvironment) -> bytes:
        final.current[name] = evaluate(expr, final)
        return b""

    return Directed(0, emit)


def _try_value(env: LayoutEnvironment, constant: Constant) -> Value | None:
    try:
        return evaluate(constant.expr, env)
    except Unresolved:
        return None


def _equ(ctx: DirectiveContext, stmt: Statement) -> Directed:
    _count(stmt, 2, 2)
    return _assign(ctx, _name(stmt.operands[0]), stmt.operands[0].location, stmt.operands[1])


def _globl(ctx: DirectiveContext, stmt: Statement) -> Directed:
    _count(stmt, 1, 1 << 16)
    ctx.globals.update(_name(op) for op in stmt.operands)
    return Directed()


def section_of(name: str) -> str | None:
    """The output section an input section name goes to (.text*, .rodata*/.data*/.sdata*, .bss*/.sbss*)."""
    for prefix, section in (
        (".text", "text"),
        (".rodata", "data"),
        (".srodata", "data"),
        (".data", "data"),
        (".sdata", "data"),
        (".bss", "bss"),
        (".sbss", "bss"),
    ):
        if name == prefix or name.startswith(prefix + "."):
            return section
    return None


def _section(ctx: DirectiveContext, stmt: Statement) -> Directed:
    if stmt.name in (".text", ".data", ".bss"):
        _count(stmt, 0, 0)
        ctx.section = stmt.name[1:]
        return Directed()
    _count(stmt, 1, 4)  # .section name[, "flags"[, @type[, ...]]]: flags do not matter to a flat image
    op = stmt.operands[0]
    name = "".join(t.text for t in op.tokens)
    section = section_of(name)
    if section is None:
        raise DirectiveError(op.location, f"unknown section '{name}': use .text*, .data*, .rodata* or .bss*")
    ctx.section = section
    return Directed()


DIRECTIVES: dict[str, Callable[[DirectiveContext, Statement], Directed]] = {
    **{name: _data for name in _DATA_WIDTHS},
    ".ascii": _strings,
    ".asciz": _strings,
    ".string": _strings,
    ".zero": _zero,
    ".space": _zero,
    ".skip": _zero,
    ".fill": _fill,
    ".align": _align,
    ".p2align": _align,
    ".balign": _align,
    ".equ": _equ,
    ".set": _equ,
    ".globl": _globl,
    ".global": _globl,
    ".text": _section,
    ".data": _section,
    ".bss": _section,
    ".section": _section,
}

# Directives that only reserve zeros, and so may appear in .bss.
ZERO_FILL = frozenset({".zero", ".space", ".skip", ".align", ".p2align", ".balign"})


def run_directive(ctx: DirectiveContext, stmt: Statement) -> Directed:
    """Apply one directive in the first pass."""
    assert stmt.name_token is not None
    handler = DIRECTIVES.get(stmt.name)
    if handler is None:
        raise DirectiveError(stmt.name_token.location, f"unknown directive '{stmt.name}'")
    if ctx.section == "bss" and handler not in (_section, _equ, _globl) and stmt.name not in ZERO_FILL:
        raise DirectiveError(stmt.name_token.location, f"'{stmt.name}' puts data in .bss, which holds only zeros")
    return handler(ctx, stmt)


def run_assignment(ctx: DirectiveContext, stmt: Statement) -> Directed:
    """`name = expression`."""
    assert stmt.name_token is not None
    _count(stmt, 1, 1)
    return _assign(ctx, stmt.name, stmt.name_token.location, stmt.operands[0])

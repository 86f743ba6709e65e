"""Assembler expressions: parsing into a small tree, and evaluation against a symbol environment.

Operators and precedence follow GNU `as` (which differs from C), highest first:
unary `- ~ !`; `* / % << >>`; `| & ^`; `+ -`. So `1 | 2 + 3` is 6, as with GNU `as`.
Shifts are arithmetic on Python integers (GNU `as` shifts 64-bit unsigned values; they agree on the values a
32-bit program uses). `%hi(x)`, `%lo(x)` (GNU rounding: `%hi` is rounded so that `%lo` sign-extends back),
`%pcrel_hi(x)` and `%pcrel_lo(label)` are functions of their argument.

A value is an offset plus an optional section: labels are section-relative until the layout is known, so
that the first pass can tell a constant (`end - start`) from an address (`start + 4`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tessera.firmware.asm_errors import AsmSyntaxError, OperandError, SourceLocation
from tessera.firmware.asm_lexer import Token
from tessera.firmware.isa import MASK32, sign_extend


@dataclass(frozen=True)
class Value:
    """An expression's value: `offset` within `section`, or an absolute number when section is None."""

    offset: int
    section: str | None = None

    @property
    def is_absolute(self) -> bool:
        return self.section is None


class Unresolved(Exception):
    """A symbol that is not (yet) defined; the first pass treats the expression as not constant."""

    def __init__(self, name: str, location: SourceLocation) -> None:
        super().__init__(name)
        self.name = name
        self.location = location


class Environment(Protocol):
    """What an expression can refer to."""

    def symbol(self, name: str, location: SourceLocation) -> Value: ...

    def local_label(self, number: int, forward: bool, location: SourceLocation) -> Value: ...

    def dot(self) -> Value: ...

    def pcrel_hi(self, target: Value, location: SourceLocation) -> int: ...

    def pcrel_lo(self, label: Value, location: SourceLocation) -> int: ...


@dataclass(frozen=True)
class Expr:
    location: SourceLocation


@dataclass(frozen=True)
class Number(Expr):
    value: int


@dataclass(frozen=True)
class Symbol(Expr):
    name: str


@dataclass(frozen=True)
class LocalLabel(Expr):
    number: int
    forward: bool


@dataclass(frozen=True)
class Dot(Expr):
    """`.`, the address of the current statement."""


@dataclass(frozen=True)
class Unary(Expr):
    op: str
    operand: Expr


@dataclass(frozen=True)
class Binary(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Reloc(Expr):
    """`%hi(...)` and friends."""

    function: str
    operand: Expr


RELOC_FUNCTIONS = ("%hi", "%lo", "%pcrel_hi", "%pcrel_lo")
_PRECEDENCE = {"*": 3, "/": 3, "%": 3, "<<": 3, ">>": 3, "|": 2, "&": 2, "^": 2, "+": 1, "-": 1}


class _Parser:
    def __init__(self, tokens: tuple[Token, ...] | list[Token], where: SourceLocation) -> None:
        self.tokens = tokens
        self.pos = 0
        self.where = where

    def peek(self) -> Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1].location if self.tokens else self.where
            raise AsmSyntaxError(last, "expression ends too early")
        self.pos += 1
        return tok

    def expect(self, text: str) -> Token:
        tok = self.take()
        if tok.kind != "op" or tok.text != text:
            raise AsmSyntaxError(tok.location, f"expected '{text}', found {tok.text!r}")
        return tok

    def binary(self, min_prec: int) -> Expr:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok.kind != "op" or _PRECEDENCE.get(tok.text, 0) < min_prec:
                return left
            self.pos += 1
            right = self.binary(_PRECEDENCE[tok.text] + 1)
            left = Binary(tok.location, tok.text, left, right)

    def unary(self) -> Expr:
        tok = self.take()
        if tok.kind == "op" and tok.text in ("-", "~", "!", "+"):
            return Unary(tok.location, tok.text, self.unary())
        if tok.kind == "op" and tok.text == "(":
            inner = self.binary(1)
            self.expect(")")
            return inner
        if tok.kind == "number":
            assert isinstance(tok.value, int)
            return Number(tok.location, tok.value)
        if tok.kind == "local":
            assert isinstance(tok.value, tuple)
            return LocalLabel(tok.location, tok.value[0], tok.value[1])
        if tok.kind == "ident":
            return Dot(tok.location) if tok.text == "." else Symbol(tok.location, tok.text)
        if tok.kind == "reloc":
            if tok.text not in RELOC_FUNCTIONS:
                raise OperandError(tok.location, f"unknown relocation function {tok.text}")
            self.expect("(")
            inner = self.binary(1)
            self.expect(")")
            return Reloc(tok.location, tok.text, inner)
        raise AsmSyntaxError(tok.location, f"expected a value, found {tok.text!r}")


def parse_expression(tokens: tuple[Token, ...] | list[Token], where: SourceLocation) -> Expr:
    """Parse all of `tokens` as one expression; `where` locates an empty token list."""
    if not tokens:
        raise OperandError(where, "missing expression")
    parser = _Parser(tokens, where)
    expr = parser.binary(1)
    extra = parser.peek()
    if extra is not None:
        raise AsmSyntaxError(extra.location, f"unexpected {extra.text!r} after expression")
    return expr


def hi20(value: int) -> int:
    """GNU's %hi: the upper 20 bits, rounded so that adding the sign-extended %lo gives the value back."""
    return ((value + 0x800) >> 12) & 0xFFFFF


def lo12(value: int) -> int:
    """GNU's %lo: the low 12 bits as a signed number."""
    return sign_extend(value, 12)


def _not_constant(expr: Expr, what: str) -> OperandError:
    return OperandError(expr.location, f"{what} needs constant operands")


def evaluate(expr: Expr, env: Environment) -> Value:
    """The value of `expr`. Raises Unresolved for unknown symbols, OperandError for invalid arithmetic."""
    if isinstance(expr, Number):
        return Value(expr.value)
    if isinstance(expr, Symbol):
        return env.symbol(expr.name, expr.location)
    if isinstance(expr, LocalLabel):
        return env.local_label(expr.number, expr.forward, expr.location)
    if isinstance(expr, Dot):
        return env.dot()
    if isinstance(expr, Unary):
        v = evaluate(expr.operand, env)
        if expr.op == "+":
            return v
        if not v.is_absolute:
            raise _not_constant(expr, f"unary '{expr.op}'")
        return Value({"-": -v.offset, "~": ~v.offset, "!": int(v.offset == 0)}[expr.op])
    if isinstance(expr, Reloc):
        v = evaluate(expr.operand, env)
        if expr.function == "%pcrel_lo":
            return Value(env.pcrel_lo(v, expr.location))
        if expr.function == "%pcrel_hi":
            return Value(env.pcrel_hi(v, expr.location))
        if not v.is_absolute:
            raise _not_constant(expr, expr.function)
        return Value(hi20(v.offset) if expr.function == "%hi" else lo12(v.offset))
    assert isinstance(expr, Binary)
    a, b = evaluate(expr.left, env), evaluate(expr.right, env)
    if expr.op == "+":
        if not (a.is_absolute or b.is_absolute):
            raise OperandError(expr.location, "cannot add two addresses")
        return Value(a.offset + b.offset, a.section or b.section)
    if expr.op == "-":
        if a.section == b.section:
            return Value(a.offset - b.offset)
        if b.is_absolute:
            return Value(a.offset - b.offset, a.section)
        raise OperandError(expr.location, "cannot subtract addresses in different sections")
    if not (a.is_absolute and b.is_absolute):
        raise _not_constant(expr, f"'{expr.op}'")
    x, y = a.offset, b.offset
    if expr.op in ("/", "%"):
        if y == 0:
            raise OperandError(expr.location, "division by zero")
        quotient = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)  # C semantics: truncate toward 0
        return Value(quotient if expr.op == "/" else x - quotient * y)
    if expr.op in ("<<", ">>"):
        if not 0 <= y < 64:
            raise OperandError(expr.location, f"shift count {y} out of range [0, 63]")
        return Value(x << y if expr.op == "<<" else x >> y)
    return Value({"*": x * y, "|": x | y, "&": x & y, "^": x ^ y}[expr.op])


def wrap32(value: int) -> int:
    """A value as an unsigned 32-bit word."""
    return value & MASK32

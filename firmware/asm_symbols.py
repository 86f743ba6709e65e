"""Symbols and the two evaluation environments of the assembler.

The first pass (`LayoutEnvironment`) knows labels only as section offsets, so it can tell constants from
addresses; a symbol not defined yet is `Unresolved`. The second pass (`FinalEnvironment`) knows every
address; it also serves the instruction expansions (`asm_forms.Encoder`): evaluation and range checks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from tessera.firmware.asm_errors import (
    AsmError,
    DuplicateSymbolError,
    ImmediateRangeError,
    MisalignedTargetError,
    OperandError,
    SourceLocation,
    UndefinedSymbolError,
)
from tessera.firmware.asm_expr import Expr, Unresolved, Value, evaluate, hi20, lo12
from tessera.firmware.asm_forms import Arg, Imm
from tessera.firmware.isa import sign_extend


@dataclass
class Label:
    section: str
    offset: int
    location: SourceLocation


@dataclass
class Constant:
    """A `.equ`/`.set`/`=` symbol. `value` is None until its expression can be evaluated; `dot` and `seq` are
    the position of the definition, for `.` and local labels inside the expression."""

    expr: Expr
    location: SourceLocation
    dot: Value
    seq: int
    value: Value | None = None


@dataclass
class Position:
    """Where a statement is: its section, offset and how many local labels precede it (including its own)."""

    section: str
    offset: int
    seq: int


@dataclass
class SymbolTable:
    labels: dict[str, Label] = field(default_factory=dict)
    constants: dict[str, Constant] = field(default_factory=dict)
    # Numeric local labels: number -> [(definition index, section, offset)] in source order.
    locals: dict[int, list[tuple[int, str, int]]] = field(default_factory=dict)
    local_count: int = 0

    def define_label(self, name: str, section: str, offset: int, location: SourceLocation) -> None:
        if name.isdigit():
            self.locals.setdefault(int(name), []).append((self.local_count, section, offset))
            self.local_count += 1
            return
        self._check_free(name, location, allow_constant=False)
        self.labels[name] = Label(section, offset, location)

    def define_constant(self, name: str, constant: Constant) -> None:
        self._check_free(name, constant.location, allow_constant=True)
        self.constants[name] = constant

    def _check_free(self, name: str, location: SourceLocation, allow_constant: bool) -> None:
        previous = self.labels.get(name)
        if previous is None and not allow_constant and name in self.constants:
            previous = self.constants[name]  # type: ignore[assignment]
        if previous is not None:
            raise DuplicateSymbolError(location, f"symbol '{name}' is already defined at line {previous.location.line}")

    def local(self, number: int, forward: bool, seq: int) -> tuple[str, int] | None:
        """The `Nf` / `Nb` definition seen from a statement with `seq` local labels before or on it."""
        defs = self.locals.get(number, [])
        if forward:
            found = next((d for d in defs if d[0] >= seq), None)
        else:
            found = next((d for d in reversed(defs) if d[0] < seq), None)
        return None if found is None else (found[1], found[2])


class _BaseEnvironment(ABC):
    """Position tracking and `.equ` evaluation shared by both passes (an `asm_expr.Environment`)."""

    def __init__(self, table: SymbolTable, position: Position) -> None:
        self.table = table
        self.position = position
        self._resolving: set[str] = set()

    @abstractmethod
    def _place(self, section: str, offset: int) -> Value:
        """The value of a section offset in this pass."""

    @abstractmethod
    def symbol(self, name: str, location: SourceLocation) -> Value: ...

    @abstractmethod
    def local_label(self, number: int, forward: bool, location: SourceLocation) -> Value: ...

    @abstractmethod
    def pcrel_hi(self, target: Value, location: SourceLocation) -> int: ...

    @abstractmethod
    def pcrel_lo(self, label: Value, location: SourceLocation) -> int: ...

    def dot(self) -> Value:
        return self._place(self.position.section, self.position.offset)

    def _constant(self, name: str, constant: Constant, location: SourceLocation) -> Value:
        if constant.value is not None:
            return self._absolute(constant.value)
        if name in self._resolving:
            raise OperandError(location, f"symbol '{name}' is defined in terms of itself")
        saved = self.position
        self._resolving.add(name)
        try:
            self.position = Position(constant.dot.section or saved.section, constant.dot.offset, constant.seq)
            return evaluate(constant.expr, self)
        finally:
            self.position = saved
            self._resolving.discard(name)

    def _absolute(self, value: Value) -> Value:
        return value if value.section is None else self._place(value.section, value.offset)


class LayoutEnvironment(_BaseEnvironment):
    """First pass: labels are section offsets; anything not yet defined is Unresolved."""

    def _place(self, section: str, offset: int) -> Value:
        return Value(offset, section)

    def symbol(self, name: str, location: SourceLocation) -> Value:
        if name in self.table.labels:
            label = self.table.labels[name]
            return Value(label.offset, label.section)
        if name in self.table.constants:
            return self._constant(name, self.table.constants[name], location)
        raise Unresolved(name, location)

    def local_label(self, number: int, forward: bool, location: SourceLocation) -> Value:
        found = self.table.local(number, forward, self.position.seq)
        if found is None:
            raise Unresolved(f"{number}{'f' if forward else 'b'}", location)
        return Value(found[1], found[0])

    def pcrel_hi(self, target: Value, location: SourceLocation) -> int:
        raise Unresolved("%pcrel_hi", location)

    def pcrel_lo(self, label: Value, location: SourceLocation) -> int:
        raise Unresolved("%pcrel_lo", location)

    def constant(self, arg: Arg) -> int | None:
        """The value of arg if it is a constant known at this point of the first pass, else None."""
        if isinstance(arg, int):
            return arg
        try:
            value = evaluate(arg.expr, self)
        except (Unresolved, AsmError):
            return None
        return value.offset if value.is_absolute else None

    def require_constant(self, arg: Imm, what: str) -> int:
        """A value the layout depends on (sizes, alignments): it must be known here."""
        try:
            value = evaluate(arg.expr, self)
        except Unresolved as e:
            raise OperandError(e.location, f"{what} must be a constant defined before this line") from None
        if not value.is_absolute:
            raise OperandError(arg.location, f"{what} must be a constant, not an address")
        return value.offset


class FinalEnvironment(_BaseEnvironment):
    """Second pass: every label has its address. Also the `Encoder` of instruction expansions."""

    def __init__(self, table: SymbolTable, section_starts: dict[str, int]) -> None:
        super().__init__(table, Position("text", 0, 0))
        self.section_starts = section_starts
        self.current: dict[str, Value] = {}  # .set values as of the current statement
        self.location = SourceLocation("<input>", 0, 0)  # the current statement's mnemonic
        self._pcrel_targets: dict[int, int] = {}

    def _place(self, section: str, offset: int) -> Value:
        return Value(self.section_starts[section] + offset)

    @property
    def pc(self) -> int:
        return self.section_starts[self.position.section] + self.position.offset

    def symbol(self, name: str, location: SourceLocation) -> Value:
        if name in self.table.labels:
            label = self.table.labels[name]
            return self._place(label.section, label.offset)
        if name in self.current:
            return self._absolute(self.current[name])
        if name in self.table.constants:
            return self._constant(name, self.table.constants[name], location)
        raise UndefinedSymbolError(location, f"undefined symbol '{name}'")

    def local_label(self, number: int, forward: bool, location: SourceLocation) -> Value:
        found = self.table.local(number, forward, self.position.seq)
        if found is None:
            where = "after" if forward else "before"
            raise UndefinedSymbolError(location, f"no local label '{number}:' {where} this line")
        return self._place(*found)

    def pcrel_hi(self, target: Value, location: SourceLocation) -> int:
        self._pcrel_targets[self.pc] = target.offset
        return hi20(target.offset - self.pc)

    def pcrel_lo(self, label: Value, location: SourceLocation) -> int:
        target = self._pcrel_targets.get(label.offset)
        if target is None:
            raise OperandError(location, "%pcrel_lo needs the label of an earlier auipc with %pcrel_hi")
        return lo12(target - label.offset)

    # --- Encoder ---------------------------------------------------------------------------------------

    def _where(self, arg: Arg) -> SourceLocation:
        return arg.location if isinstance(arg, Imm) else self.location

    def value(self, arg: Arg) -> int:
        if isinstance(arg, int):
            return arg
        return evaluate(arg.expr, self).offset

    def check_range(self, arg: Arg, value: int, lo: int, hi: int, what: str) -> int:
        """value, if lo <= value <= hi; otherwise an ImmediateRangeError at arg naming the range."""
        if not lo <= value <= hi:
            raise ImmediateRangeError(self._where(arg), f"{what} {value} out of range [{lo}, {hi}]")
        return value

    def signed(self, arg: Arg, width: int, what: str) -> int:
        return self.check_range(arg, self.value(arg), -(1 << (width - 1)), (1 << (width - 1)) - 1, what)

    def unsigned(self, arg: Arg, width: int, what: str) -> int:
        return self.check_range(arg, self.value(arg), 0, (1 << width) - 1, what)

    def pc_offset(self, arg: Arg, width: int, what: str, pc: int) -> int:
        target = self.value(arg)
        if target % 4:
            raise MisalignedTargetError(self._where(arg), f"{what} {target:#x} is not a multiple of 4")
        offset = sign_extend(target - pc, 32)
        lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 2
        if not lo <= offset <= hi:
            raise ImmediateRangeError(
                self._where(arg), f"{what} {target:#x} out of reach: offset {offset} out of range [{lo}, {hi}]"
            )
        return offset

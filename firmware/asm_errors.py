"""Assembler diagnostics: every error names its place as `file:line:column: message`.

Each class of mistake has its own exception type so that callers (and tests) can tell them apart; all derive
from `AsmError`. The assembler keeps going after an error where it safely can, and the exception it finally
raises carries every error it found in `errors` (itself first), in source order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SourceLocation:
    """A place in an assembly source: 1-based line and column."""

    filename: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.column}"


class AsmError(Exception):
    """An error in assembly source, located at `location`."""

    def __init__(self, location: SourceLocation, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message
        self.errors: tuple[AsmError, ...] = (self,)


class AsmSyntaxError(AsmError):
    """The text does not parse: stray characters, unbalanced parentheses, an unterminated string."""


class UnknownMnemonicError(AsmError):
    """No instruction or pseudo-instruction has this name."""


class OperandError(AsmError):
    """Wrong number of operands, or an operand of the wrong kind."""


class RegisterError(OperandError):
    """A register operand that names no register."""


class ImmediateRangeError(AsmError):
    """A value that does not fit its field; the message states the allowed range."""


class UndefinedSymbolError(AsmError):
    """A symbol or local label that is never defined."""


class DuplicateSymbolError(AsmError):
    """A label or constant defined twice."""


class MisalignedTargetError(AsmError):
    """A branch or jump to an address that is not a multiple of 4 (the tile would trap on it)."""


class DirectiveError(AsmError):
    """An unknown directive, or a directive used wrongly."""

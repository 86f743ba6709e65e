"""Lexing and statement splitting for GNU `as` style RISC-V assembly.

`parse_source` turns a source text into `Statement`s: the labels defined on a line, then an instruction, a
directive or a `name = expression` assignment, with its operands split at top-level commas. Comments (`#`,
`//` and `/* ... */`, which may span lines) are blanked out first, keeping columns intact so that every token
knows where it came from. `;` separates statements on one line, as in GNU `as` for RISC-V.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from tessera.firmware.asm_errors import AsmSyntaxError, SourceLocation

TokenKind = Literal["ident", "number", "local", "string", "reloc", "op"]


@dataclass(frozen=True)
class Token:
    """One lexeme. `value` is the number (number, char literal), the decoded bytes (string), or the
    `(label number, forward)` pair of a local label reference such as `1f`."""

    kind: TokenKind
    text: str
    location: SourceLocation
    value: int | bytes | tuple[int, bool] | None = None


@dataclass(frozen=True)
class Operand:
    """The tokens of one comma-separated operand; `location` is where it starts (for empty operands too)."""

    tokens: tuple[Token, ...]
    location: SourceLocation

    @property
    def text(self) -> str:
        return " ".join(t.text for t in self.tokens)


StatementKind = Literal["empty", "instruction", "directive", "assignment"]


@dataclass
class Statement:
    """One statement: labels, then an optional instruction / directive / assignment.

    `name` is the mnemonic (lower case), the directive (lower case, with its dot) or the assigned symbol;
    `source` is the whole source line, for the listing."""

    line: int
    source: str
    labels: list[Token] = field(default_factory=list)
    kind: StatementKind = "empty"
    name: str = ""
    name_token: Token | None = None
    operands: list[Operand] = field(default_factory=list)


_ESCAPES = {"n": 10, "t": 9, "r": 13, "b": 8, "f": 12, "v": 11, "a": 7, "e": 27, "\\": 92, '"': 34, "'": 39}

_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<hex>0[xX][0-9a-fA-F]+)\b
  | (?P<bin>0[bB][01]+)\b
  | (?P<local>[0-9]+[bf])\b
  | (?P<dec>[0-9]+)\b
  | (?P<reloc>%[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ident>[A-Za-z_.$@][A-Za-z0-9_.$@]*)
  | (?P<op><<|>>|[-+*/%&|^~!(),:=])
    """,
    re.VERBOSE,
)


def strip_comments(source: str, filename: str) -> str:
    """Replace every comment character with a space (newlines kept), so line and column numbers still hold.

    Strings and character literals are honoured: `"#"` and `'#` are not comments."""
    out = list(source)
    i, line, line_start, n = 0, 1, 0, len(source)
    while i < n:
        c = source[i]
        if c == "\n":
            line, line_start = line + 1, i + 1
            i += 1
        elif c == '"':
            i += 1
            while i < n and source[i] not in '"\n':
                i += 2 if source[i] == "\\" else 1
            i += 1
        elif c == "'":
            i = _skip_char_literal(source, i)
        elif c == "#" or source.startswith("//", i):
            while i < n and source[i] != "\n":
                out[i] = " "
                i += 1
        elif source.startswith("/*", i):
            end = source.find("*/", i + 2)
            if end < 0:
                raise AsmSyntaxError(SourceLocation(filename, line, i - line_start + 1), "unterminated /* comment")
            for j in range(i, end + 2):
                if source[j] != "\n":
                    out[j] = " "
            line += source.count("\n", i, end)
            if "\n" in source[i:end]:
                line_start = source.rfind("\n", i, end) + 1
            i = end + 2
        else:
            i += 1
    return "".join(out)


_CHAR_LITERAL_RE = re.compile(r"'(?:\\(?:[xX][0-9a-fA-F]+|[0-7]{1,3}|.)|.)'?", re.DOTALL)


def _skip_char_literal(text: str, i: int) -> int:
    """The index after the character literal starting at text[i]: 'c, 'c' or one with an escape ('\\n')."""
    m = _CHAR_LITERAL_RE.match(text, i)
    return m.end() if m else i + 1


def _decode_escape(text: str, i: int, loc: SourceLocation) -> tuple[int, int]:
    """Decode the escape starting after the backslash at text[i]; return (byte value, next index)."""
    c = text[i : i + 1]
    if c in _ESCAPES:
        return _ESCAPES[c], i + 1
    if c in ("x", "X"):
        m = re.match(r"[0-9a-fA-F]+", text[i + 1 :])
        if not m:
            raise AsmSyntaxError(loc, "\\x escape without hex digits")
        return int(m.group(), 16) & 0xFF, i + 1 + m.end()
    m = re.match(r"[0-7]{1,3}", text[i:])
    if m:
        return int(m.group(), 8) & 0xFF, i + m.end()
    raise AsmSyntaxError(loc, f"unknown escape sequence '\\{c}'")


def tokenize(text: str, filename: str, line: int, column0: int = 0) -> list[Token]:
    """Tokens of one statement's text; `column0` is the 0-based column where `text` starts in its line."""
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        loc = SourceLocation(filename, line, column0 + i + 1)
        c = text[i]
        if c == '"':
            data = bytearray()
            j = i + 1
            while True:
                if j >= len(text):
                    raise AsmSyntaxError(loc, "unterminated string")
                if text[j] == '"':
                    break
                if text[j] == "\\":
                    value, j = _decode_escape(text, j + 1, SourceLocation(filename, line, column0 + j + 1))
                    data.append(value)
                else:
                    data.extend(text[j].encode())
                    j += 1
            tokens.append(Token("string", text[i : j + 1], loc, bytes(data)))
            i = j + 1
            continue
        if c == "'":
            # GNU `as` takes 'c (no closing quote); C-style 'c' is accepted as well.
            if i + 1 >= len(text):
                raise AsmSyntaxError(loc, "character literal without a character")
            if text[i + 1] == "\\":
                value, j = _decode_escape(text, i + 2, loc)
            else:
                value, j = ord(text[i + 1]), i + 2
            if text[j : j + 1] == "'":
                j += 1
            tokens.append(Token("number", text[i:j], loc, value))
            i = j
            continue
        m = _TOKEN_RE.match(text, i)
        if not m:
            raise AsmSyntaxError(loc, f"unexpected character {c!r}")
        kind, lexeme = m.lastgroup, m.group()
        if kind == "hex":
            tokens.append(Token("number", lexeme, loc, int(lexeme, 16)))
        elif kind == "bin":
            tokens.append(Token("number", lexeme, loc, int(lexeme[2:], 2)))
        elif kind == "dec":
            # GNU `as`: a leading 0 means octal.
            base = 8 if len(lexeme) > 1 and lexeme[0] == "0" else 10
            try:
                tokens.append(Token("number", lexeme, loc, int(lexeme, base)))
            except ValueError:
                raise AsmSyntaxError(loc, f"bad octal number {lexeme!r}") from None
        elif kind == "local":
            tokens.append(Token("local", lexeme, loc, (int(lexeme[:-1]), lexeme[-1] == "f")))
        elif kind == "reloc":
            tokens.append(Token("reloc", lexeme.lower(), loc))
        elif kind in ("ident", "op"):
            tokens.append(Token(kind, lexeme, loc))  # type: ignore[arg-type]
        i = m.end()
    return tokens


def _split_statements(line: str) -> list[tuple[int, str]]:
    """Split a comment-free line at `;` outside strings and char literals: (start column, text) pieces."""
    pieces: list[tuple[int, str]] = []
    start, i = 0, 0
    while i < len(line):
        c = line[i]
        if c == '"':
            i += 1
            while i < len(line) and line[i] != '"':
                i += 2 if line[i] == "\\" else 1
        elif c == "'":
            i = _skip_char_literal(line, i) - 1
        elif c == ";":
            pieces.append((start, line[start:i]))
            start = i + 1
        i += 1
    pieces.append((start, line[start:]))
    return pieces


def split_operands(tokens: list[Token], after: SourceLocation) -> list[Operand]:
    """Split tokens at commas outside parentheses. `after` locates an operand list that is empty."""
    if not tokens:
        return []
    operands: list[Operand] = []
    current: list[Token] = []
    start = tokens[0].location
    depth = 0
    for tok in tokens:
        if tok.kind == "op" and tok.text == "," and depth == 0:
            operands.append(Operand(tuple(current), start))
            current = []
            start = SourceLocation(tok.location.filename, tok.location.line, tok.location.column + 1)
            continue
        if tok.kind == "op" and tok.text == "(":
            depth += 1
        elif tok.kind == "op" and tok.text == ")":
            depth -= 1
        if not current:
            start = tok.location
        current.append(tok)
    operands.append(Operand(tuple(current), start))
    return operands


def _parse_statement(tokens: list[Token], line: int, source: str) -> Statement:
    stmt = Statement(line=line, source=source)
    i = 0
    while (
        i + 1 < len(tokens)
        and tokens[i].kind in ("ident", "number")
        and tokens[i + 1].kind == "op"
        and tokens[i + 1].text == ":"
    ):
        label = tokens[i]
        if label.kind == "number" and not label.text.isdigit():
            raise AsmSyntaxError(label.location, f"bad local label {label.text!r}: use a decimal number")
        stmt.labels.append(label)
        i += 2
    if i == len(tokens):
        return stmt
    head = tokens[i]
    rest = tokens[i + 1 :]
    if head.kind != "ident":
        raise AsmSyntaxError(head.location, f"expected a label, instruction or directive, found {head.text!r}")
    stmt.name_token = head
    if rest and rest[0].kind == "op" and rest[0].text == "=":
        stmt.kind, stmt.name = "assignment", head.text
        stmt.operands = split_operands(rest[1:], rest[0].location)
        return stmt
    stmt.kind = "directive" if head.text.startswith(".") else "instruction"
    stmt.name = head.text.lower()
    stmt.operands = split_operands(rest, head.location)
    return stmt


def parse_source(source: str, filename: str) -> tuple[list[Statement], list[AsmSyntaxError]]:
    """All statements of a source, in order, and the syntax errors found (lines with errors are skipped)."""
    statements: list[Statement] = []
    errors: list[AsmSyntaxError] = []
    try:
        clean = strip_comments(source, filename)
    except AsmSyntaxError as e:
        return [], [e]
    raw_lines = source.split("\n")
    for number, (raw, line) in enumerate(zip(raw_lines, clean.split("\n"), strict=True), start=1):
        for column0, piece in _split_statements(line):
            try:
                tokens = tokenize(piece, filename, number, column0)
                statements.append(_parse_statement(tokens, number, raw.rstrip()))
            except AsmSyntaxError as e:
                errors.append(e)
    return statements, errors

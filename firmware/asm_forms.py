"""Instruction forms: the operand syntaxes each mnemonic accepts and the words each one expands to.

A mnemonic has one or more `Form`s (GNU accepts `jalr rs`, `jalr rd, rs`, `jalr rd, offset(rs)`, ...). Forms
are chosen by operand count, then by which one's operands parse. Every real instruction of
`insn_table.INSTRUCTIONS` gets its forms from its format, so a new real instruction needs no code here;
pseudo-instructions are listed in `_pseudo_forms`.

Expansion runs in the second pass, through an `Encoder` that evaluates expressions (all symbols known) and
checks ranges.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tessera.firmware.asm_errors import AsmError, OperandError, RegisterError, SourceLocation, UnknownMnemonicError
from tessera.firmware.asm_expr import Expr, hi20, lo12, parse_expression
from tessera.firmware.asm_lexer import Operand, Token
from tessera.firmware.insn_table import (
    BY_MNEMONIC,
    CSR_NUMBERS,
    FENCE_BITS,
    INSTRUCTIONS,
    REGISTERS,
    Format,
    InsnSpec,
    encode_spec,
)
from tessera.firmware.isa import sign_extend


@dataclass(frozen=True)
class Imm:
    """An expression operand and where it was written (range errors point at it)."""

    expr: Expr
    location: SourceLocation


Arg = int | Imm
Args = dict[str, Arg]


class Encoder(Protocol):
    """Second-pass services for expansions: evaluation, range checks, the statement's address."""

    @property
    def pc(self) -> int: ...

    def value(self, arg: Arg) -> int: ...

    def signed(self, arg: Arg, width: int, what: str) -> int: ...

    def unsigned(self, arg: Arg, width: int, what: str) -> int: ...

    def pc_offset(self, arg: Arg, width: int, what: str, pc: int) -> int: ...

    def check_range(self, arg: Arg, value: int, lo: int, hi: int, what: str) -> int: ...


Expand = Callable[[Args, Encoder], list[int]]

RA, T1 = 1, 6  # the link register and GNU's scratch register for far calls


class FirstPass(Protocol):
    """First-pass service: the value of an expression if it is already a known constant."""

    def constant(self, arg: Arg) -> int | None: ...


@dataclass(frozen=True)
class Form:
    """One operand syntax of a mnemonic. `operands` are kinds (see `parse_operand`); `words` is the fixed
    expansion length, or a function of the operands evaluated in the first pass (for `li`)."""

    operands: tuple[str, ...]
    expand: Expand
    words: int | Callable[[Args, FirstPass], int] = 1

    def syntax(self, mnemonic: str) -> str:
        shown = {"mem": "offset(rs1)", "imm": "imm", "target": "label", "sym": "symbol", "zimm": "uimm5"}
        return " ".join([mnemonic, ", ".join(shown.get(k, k) for k in self.operands)]).strip()


# ---------------------------------------------------------------------------------------------------------
# Operand parsing


def _single_ident(op: Operand) -> Token | None:
    return op.tokens[0] if len(op.tokens) == 1 and op.tokens[0].kind == "ident" else None


def parse_register(op: Operand) -> int:
    ident = _single_ident(op)
    if ident is None:
        if not op.tokens:
            raise OperandError(op.location, "missing register operand")
        raise OperandError(op.location, f"expected a register, found '{op.text}'")
    number = REGISTERS.get(ident.text.lower())
    if number is None:
        raise RegisterError(ident.location, f"unknown register '{ident.text}'")
    return number


_REGISTER_LIKE = re.compile(r"[xast][0-9]+", re.IGNORECASE)


def parse_imm(op: Operand) -> Imm:
    ident = _single_ident(op)
    if ident is not None and ident.text.lower() in REGISTERS:
        raise OperandError(op.location, f"expected an immediate or symbol, found register '{ident.text}'")
    if ident is not None and _REGISTER_LIKE.fullmatch(ident.text):
        # Names like a8 or x32 are mistyped registers far more often than symbols.
        raise RegisterError(ident.location, f"unknown register '{ident.text}'")
    return Imm(parse_expression(op.tokens, op.location), op.location)


def parse_memory(op: Operand) -> tuple[Imm | int, int]:
    """`offset(reg)` or `(reg)`: the offset (0 if absent) and the base register."""
    toks = op.tokens
    if len(toks) < 3 or toks[-1].text != ")" or toks[-3].text != "(" or toks[-2].kind != "ident":
        raise OperandError(op.location, f"expected offset(register), found '{op.text}'")
    base = parse_register(Operand((toks[-2],), toks[-2].location))
    if len(toks) == 3:
        return 0, base
    return Imm(parse_expression(toks[:-3], op.location), op.location), base


def parse_csr(op: Operand) -> Arg:
    ident = _single_ident(op)
    if ident is not None and ident.text.lower() in CSR_NUMBERS:
        return CSR_NUMBERS[ident.text.lower()]
    return parse_imm(op)


def parse_fence_set(op: Operand) -> int:
    ident = _single_ident(op)
    letters = ident.text.lower() if ident else ""
    if not letters or any(c not in FENCE_BITS for c in letters) or len(set(letters)) != len(letters):
        raise OperandError(op.location, f"expected a fence set of the letters i, o, r, w, found '{op.text}'")
    return sum(FENCE_BITS[c] for c in letters)


def parse_operand(kind: str, op: Operand, args: Args) -> None:
    """Parse one operand of the given kind into args."""
    if kind in ("rd", "rs1", "rs2", "rt"):
        args[kind] = parse_register(op)
    elif kind in ("imm", "target", "sym", "zimm"):
        args[kind] = parse_imm(op)
    elif kind == "mem":
        args["imm"], args["rs1"] = parse_memory(op)
    elif kind == "csr":
        args["csr"] = parse_csr(op)
    elif kind in ("pred", "succ"):
        args[kind] = parse_fence_set(op)
    else:
        raise AssertionError(f"unknown operand kind {kind}")


# ---------------------------------------------------------------------------------------------------------
# Encoding helpers


def register(args: Args, key: str) -> int:
    """A register operand (absent = x0); parsing stores registers as plain numbers."""
    value = args.get(key, 0)
    assert isinstance(value, int), f"{key} is not a register"
    return value


def encode(spec: InsnSpec, args: Args, enc: Encoder, pc: int | None = None) -> int:
    """Encode a real instruction from parsed operands (missing registers are x0); `pc` is this word's
    address (for branches and jumps inside a multi-word expansion)."""
    fmt = spec.format
    reg = {k: register(args, k) for k in ("rd", "rs1", "rs2")}
    here = enc.pc if pc is None else pc
    if fmt in (Format.I, Format.LOAD, Format.STORE, Format.JALR):
        imm = enc.signed(args.get("imm", 0), 12, "immediate" if fmt is Format.I else "offset")
    elif fmt is Format.SHIFT:
        imm = enc.unsigned(args["imm"], 5, "shift amount")
    elif fmt is Format.U:
        imm = enc.unsigned(args["imm"], 20, "upper immediate")
    elif fmt is Format.BRANCH:
        imm = enc.pc_offset(args["target"], 13, "branch target", here)
    elif fmt is Format.JAL:
        imm = enc.pc_offset(args["target"], 21, "jump target", here)
    elif fmt is Format.CSR:
        imm = enc.unsigned(args["csr"], 12, "CSR number")
    elif fmt is Format.CSRI:
        imm = enc.unsigned(args["csr"], 12, "CSR number")
        reg["rs1"] = enc.unsigned(args["zimm"], 5, "CSR immediate")
    elif fmt is Format.FENCE:
        imm = register(args, "pred") << 4 | register(args, "succ")
    else:
        imm = 0
    return encode_spec(spec, imm=imm, **reg)


def _one(spec: InsnSpec, **fixed: Arg) -> Expand:
    """Expansion to one real instruction, with some operands fixed (for aliases such as `mv`)."""
    return lambda args, enc: [encode(spec, {**args, **fixed}, enc)]


def _real(mnemonic: str, **fixed: Arg) -> Expand:
    return _one(BY_MNEMONIC[mnemonic], **fixed)


def _swap(mnemonic: str) -> Expand:
    """`bgt a, b, t` is `blt b, a, t`: the same branch with its registers exchanged."""
    spec = BY_MNEMONIC[mnemonic]
    return lambda args, enc: [encode(spec, {**args, "rs1": args["rs2"], "rs2": args["rs1"]}, enc)]


def real_forms(spec: InsnSpec) -> list[Form]:
    """The operand syntaxes of a real instruction, from its format."""
    fmt = spec.format
    if fmt is Format.R:
        full = Form(("rd", "rs1", "rs2"), _one(spec))
        return [full] if spec.operands == full.operands else [Form(spec.operands, _one(spec)), full]
    if fmt in (Format.I, Format.SHIFT):
        return [Form(("rd", "rs1", "imm"), _one(spec))]
    if fmt is Format.LOAD:
        return [Form(("rd", "mem"), _one(spec)), Form(("rd", "sym"), _pcrel_access(spec, "rd"), 2)]
    if fmt is Format.STORE:
        return [Form(("rs2", "mem"), _one(spec)), Form(("rs2", "sym", "rt"), _pcrel_access(spec, "rt"), 2)]
    if fmt is Format.BRANCH:
        return [Form(("rs1", "rs2", "target"), _one(spec))]
    if fmt is Format.U:
        return [Form(("rd", "imm"), _one(spec))]
    if fmt is Format.JAL:
        return [Form(("rd", "target"), _one(spec)), Form(("target",), _one(spec, rd=1))]
    if fmt is Format.JALR:
        return [
            Form(("rd", "rs1", "imm"), _one(spec)),
            Form(("rd", "mem"), _one(spec)),
            Form(("mem",), _one(spec, rd=1)),
            Form(("rs1",), _one(spec, rd=1)),
            Form(("rs1", "imm"), _one(spec, rd=1)),
            Form(("rd", "rs1"), _one(spec)),
        ]
    if fmt is Format.CSR:
        return [Form(("rd", "csr", "rs1"), _one(spec))]
    if fmt is Format.CSRI:
        return [Form(("rd", "csr", "zimm"), _one(spec))]
    if fmt is Format.FENCE:
        return [Form(("pred", "succ"), _one(spec)), Form((), _one(spec, pred=0b1111, succ=0b1111))]
    return [Form((), _one(spec))]


# ---------------------------------------------------------------------------------------------------------
# Multi-word pseudo-instructions


def li_words(value: int) -> list[tuple[str, int]]:
    """GNU's `li` for RV32: `addi` alone if the value fits 12 bits, `lui` alone if its low 12 bits are zero,
    otherwise `lui` + `addi`. Returns (mnemonic, immediate) pairs; the value is taken modulo 2**32."""
    value = sign_extend(value, 32)
    if -2048 <= value < 2048:
        return [("addi", value)]
    upper, lower = hi20(value), lo12(value)
    return [("lui", upper)] + ([("addi", lower)] if lower else [])


def _li_size(args: Args, first: FirstPass) -> int:
    imm = args["imm"]
    value = first.constant(imm)
    if value is None:
        # As GNU `as`: li takes a constant known here; an address is loaded with `la`.
        assert isinstance(imm, Imm)
        raise OperandError(imm.location, "li needs a constant defined before this line (use la for an address)")
    return len(li_words(value))


def _li(args: Args, enc: Encoder) -> list[int]:
    rd = register(args, "rd")
    out: list[int] = []
    for mnemonic, imm in li_words(_li_value(args["imm"], enc)):
        source = rd if mnemonic == "addi" and out else 0
        out.append(encode(BY_MNEMONIC[mnemonic], {"rd": rd, "rs1": source, "imm": imm}, enc))
    return out


def _li_value(arg: Arg, enc: Encoder) -> int:
    """li accepts any 32-bit value, signed or unsigned."""
    return enc.check_range(arg, enc.value(arg), -(1 << 31), (1 << 32) - 1, "li value")


def _pcrel_pair(second: str, base: int | str, rd: int | str) -> Expand:
    """`auipc base, %pcrel_hi(sym)` then `second rd, %pcrel_lo(base)`: la, call, tail, jump. `base` and `rd`
    are register numbers or the operand that names them."""
    spec = BY_MNEMONIC[second]

    def expand(args: Args, enc: Encoder) -> list[int]:
        base_reg = register(args, base) if isinstance(base, str) else base
        rd_reg = register(args, rd) if isinstance(rd, str) else rd
        offset = _pcrel(args["sym"], enc)
        auipc = encode(BY_MNEMONIC["auipc"], {"rd": base_reg, "imm": hi20(offset)}, enc)
        return [auipc, encode(spec, {"rd": rd_reg, "rs1": base_reg, "imm": lo12(offset)}, enc)]

    return expand


def _pcrel(arg: Arg, enc: Encoder) -> int:
    """The 32-bit pc-relative offset of a symbol, wrapped like the hardware adds."""
    return sign_extend(enc.value(arg) - enc.pc, 32)


def _pcrel_access(spec: InsnSpec, link: str) -> Expand:
    """`lw rd, sym` = `auipc rd, %pcrel_hi(sym); lw rd, %pcrel_lo(sym)(rd)`;
    `sw rs, sym, rt` = `auipc rt, ...; sw rs, %pcrel_lo(sym)(rt)`."""

    def expand(args: Args, enc: Encoder) -> list[int]:
        base = register(args, link)
        offset = _pcrel(args["sym"], enc)
        auipc = encode(BY_MNEMONIC["auipc"], {"rd": base, "imm": hi20(offset)}, enc)
        return [auipc, encode(spec, {**args, "rs1": base, "imm": lo12(offset)}, enc)]

    return expand


def _csr_read(csr: str) -> Form:
    return Form(("rd",), _real("csrrs", csr=CSR_NUMBERS[csr], rs1=0))


def _pseudo_forms() -> dict[str, list[Form]]:
    zero = {"rs1": 0}
    return {
        "nop": [Form((), _real("addi", rd=0, rs1=0, imm=0))],
        "li": [Form(("rd", "imm"), _li, _li_size)],
        "la": [Form(("rd", "sym"), _pcrel_pair("addi", "rd", "rd"), 2)],
        "lla": [Form(("rd", "sym"), _pcrel_pair("addi", "rd", "rd"), 2)],
        "mv": [Form(("rd", "rs1"), _real("addi", imm=0))],
        "not": [Form(("rd", "rs1"), _real("xori", imm=-1))],
        "neg": [Form(("rd", "rs2"), _real("sub", **zero))],
        "seqz": [Form(("rd", "rs1"), _real("sltiu", imm=1))],
        "snez": [Form(("rd", "rs2"), _real("sltu", **zero))],
        "sltz": [Form(("rd", "rs1"), _real("slt", rs2=0))],
        "sgtz": [Form(("rd", "rs2"), _real("slt", **zero))],
        "j": [Form(("target",), _real("jal", rd=0))],
        "jr": [
            Form(("rs1",), _real("jalr", rd=0, imm=0)),
            Form(("mem",), _real("jalr", rd=0)),
            Form(("rs1", "imm"), _real("jalr", rd=0)),
        ],
        "ret": [Form((), _real("jalr", rd=0, rs1=1, imm=0))],
        "call": [Form(("sym",), _pcrel_pair("jalr", RA, RA), 2), Form(("rd", "sym"), _pcrel_pair("jalr", T1, "rd"), 2)],
        "tail": [Form(("sym",), _pcrel_pair("jalr", T1, 0), 2)],
        "jump": [Form(("sym", "rt"), _pcrel_pair("jalr", "rt", 0), 2)],
        "beqz": [Form(("rs1", "target"), _real("beq", rs2=0))],
        "bnez": [Form(("rs1", "target"), _real("bne", rs2=0))],
        "blez": [Form(("rs2", "target"), _real("bge", **zero))],
        "bgez": [Form(("rs1", "target"), _real("bge", rs2=0))],
        "bltz": [Form(("rs1", "target"), _real("blt", rs2=0))],
        "bgtz": [Form(("rs2", "target"), _real("blt", **zero))],
        "bgt": [Form(("rs1", "rs2", "target"), _swap("blt"))],
        "ble": [Form(("rs1", "rs2", "target"), _swap("bge"))],
        "bgtu": [Form(("rs1", "rs2", "target"), _swap("bltu"))],
        "bleu": [Form(("rs1", "rs2", "target"), _swap("bgeu"))],
        "csrr": [Form(("rd", "csr"), _real("csrrs", **zero))],
        "csrw": [Form(("csr", "rs1"), _real("csrrw", rd=0))],
        "csrs": [Form(("csr", "rs1"), _real("csrrs", rd=0))],
        "csrc": [Form(("csr", "rs1"), _real("csrrc", rd=0))],
        "csrwi": [Form(("csr", "zimm"), _real("csrrwi", rd=0))],
        "csrsi": [Form(("csr", "zimm"), _real("csrrsi", rd=0))],
        "csrci": [Form(("csr", "zimm"), _real("csrrci", rd=0))],
        "rdcycle": [_csr_read("cycle")],
        "rdcycleh": [_csr_read("cycleh")],
        "rdtime": [_csr_read("time")],
        "rdtimeh": [_csr_read("timeh")],
        "rdinstret": [_csr_read("instret")],
        "rdinstreth": [_csr_read("instreth")],
        "unimp": [Form((), _real("csrrw", rd=0, csr=CSR_NUMBERS["cycle"], rs1=0))],
        "zext.b": [Form(("rd", "rs1"), _real("andi", imm=255))],
    }


def _immediate_spellings() -> dict[str, list[Form]]:
    """GNU also spells immediate operations with the register mnemonic (objdump prints them so):
    `add rd, rs1, imm` is addi, `csrw csr, uimm5` is csrrwi x0."""
    forms = {m: [Form(("rd", "rs1", "imm"), _real(m + "i"))] for m in ("add", "xor", "or", "and", "sll", "srl", "sra")}
    forms |= {m: [Form(("rd", "csr", "zimm"), _real(m + "i"))] for m in ("csrrw", "csrrs", "csrrc")}
    forms |= {m: [Form(("csr", "zimm"), _real(f"csrr{m[3]}i", rd=0))] for m in ("csrw", "csrs", "csrc")}
    return forms


def _all_forms() -> dict[str, list[Form]]:
    forms: dict[str, list[Form]] = {spec.mnemonic: real_forms(spec) for spec in INSTRUCTIONS}
    for table in (_pseudo_forms(), _immediate_spellings()):
        for mnemonic, extra in table.items():
            forms.setdefault(mnemonic, []).extend(extra)
    return forms


FORMS: dict[str, list[Form]] = _all_forms()


def match_form(name: Token, operands: list[Operand]) -> tuple[Form, Args]:
    """The form of the instruction `name` that `operands` fit, with the parsed operands.

    Errors: unknown mnemonic; wrong operand count (listing the accepted syntaxes); otherwise the error of
    the form that got furthest."""
    mnemonic = name.text.lower()
    forms = FORMS.get(mnemonic)
    if forms is None:
        raise UnknownMnemonicError(name.location, f"unknown instruction '{name.text}'")
    candidates = [f for f in forms if len(f.operands) == len(operands)]
    if not candidates:
        usage = " or ".join(f"'{f.syntax(mnemonic)}'" for f in forms)
        raise OperandError(name.location, f"'{mnemonic}' takes {usage}, got {len(operands)} operand(s)")
    best: tuple[int, AsmError] | None = None
    for form in candidates:
        args: Args = {}
        for done, (kind, op) in enumerate(zip(form.operands, operands, strict=True)):
            try:
                parse_operand(kind, op, args)
            except AsmError as error:
                if best is None or done > best[0]:
                    best = (done, error)
                break
        else:
            return form, args
    assert best is not None
    raise best[1]

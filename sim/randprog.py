"""Random tile programs for co-simulating the gateware against the golden model.

A program is deterministic in its seed and lays out tile memory as:

    0                 jal x0, prologue          (the entry word; see "second phase" below)
    4                 prologue: every x1..x31 <- a random value
                      body: random items (ALU, shifts, LUI/AUIPC, loads, stores, forward branches and jumps,
                            bounded loops, CSR reads, FENCEs, random legal words, maybe one fault)
    dump_entry        dump: sw x1..x31 -> dump area (x0-relative), then ECALL (or EBREAK)
    data_base         data region: random words; the only place stores go
    dump_address      31 words of register dump

Every control transfer in the body goes forward to an item boundary, or backward in a loop whose counter the
loop body cannot touch, so every program ends. A program whose body holds a fault item stops there; its
registers are still observable through a second phase: write `jal x0, dump_entry` over the entry word, pulse
reset_pc (pc <- 0, registers kept) and run again (`second_phase_entry_word`).

Only deterministic CSRs are read into live registers: mhartid. Reads of cycle/time(h) check that they are
legal and then overwrite the destination, since the gateware's cycle count is not the model's. instret is not
read (the core does not implement it; `run_on_model` runs the model without it).

With `messages=True` the body also holds custom-0 message instructions, for a tile whose message unit behaves
as `OperandMessageUnit` (deterministic in the operands: it makes the core sleep, answers, or faults).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from tessera.firmware.isa import MASK32, Cause, Csr, Opcode, TileState
from tessera.sim.encode import (
    ALU_FUNCT3,
    BRANCH_FUNCT3,
    EBREAK,
    ECALL,
    FENCE,
    FENCE_I,
    IMM_OPS,
    SHIFT_IMM_OPS,
    addi,
    alu,
    alu_imm,
    auipc,
    branch,
    csr,
    custom0,
    jal,
    jalr,
    li,
    load,
    lui,
    store,
)
from tessera.sim.model import MessageReply, TileModel

LOAD_SIZES = {"lb": 1, "lbu": 1, "lh": 2, "lhu": 2, "lw": 4}
STORE_SIZES = {"sb": 1, "sh": 2, "sw": 4}
DUMP_WORDS = 31  # x1..x31

#: Opcodes whose legal random words have no effect beyond rd (so they are safe anywhere in a body).
_SAFE_RANDOM_OPCODES = frozenset({Opcode.OP, Opcode.OP_IMM, Opcode.LUI, Opcode.AUIPC, Opcode.MISC_MEM})

EDGE_VALUES = (0, 1, 2, 0xFFFF_FFFF, 0x8000_0000, 0x7FFF_FFFF, 0xFFFF_F800, 0x7FF, 0x800, 31, 32)

FAULT_KINDS = (
    "load_misaligned",
    "store_misaligned",
    "load_outside",
    "store_outside",
    "illegal",
    "jump_misaligned",
    "branch_misaligned",
    "fetch_outside",
)


@dataclass(frozen=True)
class Layout:
    """Where a random program puts things in a tile of `mem_bytes`."""

    mem_bytes: int
    code_bytes: int
    data_base: int
    data_bytes: int
    dump_address: int

    @classmethod
    def for_memory(cls, mem_bytes: int) -> Layout:
        if mem_bytes < 2048 or mem_bytes & (mem_bytes - 1):
            raise ValueError(f"random programs need a power-of-two memory of at least 2048 bytes, not {mem_bytes}")
        # The dump area must be reachable with x0-relative stores (offset <= 2047).
        return cls(mem_bytes=mem_bytes, code_bytes=1280, data_base=1280, data_bytes=512, dump_address=1792)


@dataclass
class RandomProgram:
    """A generated program: the image to load at 0 and what is needed to read its results back."""

    seed: int
    layout: Layout
    words: list[int]
    dump_entry: int
    tile_id: int
    faults: bool  # the body holds a fault item (it may be skipped by a branch)
    messages: bool  # the body holds message instructions: run it on a tile with an `OperandMessageUnit`
    description: list[str] = field(default_factory=list)

    @property
    def dump_address(self) -> int:
        return self.layout.dump_address

    def second_phase_entry_word(self) -> int:
        """The entry word that sends a reset tile straight to the register dump."""
        return jal(0, self.dump_entry)


class _Builder:
    """Accumulates body items; each item is a list of words whose start is a legal jump target."""

    def __init__(self, rng: random.Random, layout: Layout) -> None:
        self.rng = rng
        self.layout = layout
        self.items: list[list[int]] = []
        self.description: list[str] = []
        # Items that need the address of a later item are built once all addresses are known.
        self.fixups: list[tuple[int, Callable[[list[int]], list[int]]]] = []

    def value(self) -> int:
        rng = self.rng
        choice = rng.random()
        if choice < 0.2:
            return rng.choice(EDGE_VALUES)
        if choice < 0.4:
            return rng.randrange(-64, 64) & MASK32
        return rng.getrandbits(32)

    def reg(self, allow_zero: bool = True) -> int:
        return self.rng.randrange(0 if allow_zero and self.rng.random() < 0.05 else 1, 32)

    def add(self, kind: str, words: list[int]) -> None:
        self.items.append(words)
        self.description.append(kind)

    def add_fixup(self, kind: str, length: int, make: Callable[[list[int]], list[int]]) -> None:
        """An item of `length` words built later from the list of item start addresses."""
        self.fixups.append((len(self.items), make))
        self.add(kind, [0] * length)

    # -- item kinds ------------------------------------------------------------------------------------

    def alu_reg(self) -> None:
        op = self.rng.choice(sorted(ALU_FUNCT3))
        self.add(op, [alu(op, self.reg(), self.reg(), self.reg())])

    def alu_imm(self) -> None:
        rng = self.rng
        if rng.random() < 0.35:
            op = rng.choice(SHIFT_IMM_OPS)
            self.add(op, [alu_imm(op, self.reg(), self.reg(), rng.randrange(32))])
        else:
            op = rng.choice(IMM_OPS)
            imm = rng.choice((0, 1, -1, 2047, -2048)) if rng.random() < 0.2 else rng.randrange(-2048, 2048)
            self.add(op, [alu_imm(op, self.reg(), self.reg(), imm)])

    def upper(self) -> None:
        make = lui if self.rng.random() < 0.5 else auipc
        self.add(make.__name__, [make(self.reg(), self.rng.getrandbits(20))])

    def _address(self, size: int, low: int, high: int) -> int:
        return self.rng.randrange(low // size, high // size) * size

    def _based(self, address: int) -> tuple[list[int], int, int]:
        """Words that make some register + offset = address: (setup words, base register, offset)."""
        rng = self.rng
        if address < 2048 and rng.random() < 0.3:
            return [], 0, address
        base = self.reg(allow_zero=False)
        offset = rng.randrange(-2048, 2048)
        return li(base, address - offset), base, offset

    def load(self) -> None:
        op = self.rng.choice(sorted(LOAD_SIZES))
        address = self._address(LOAD_SIZES[op], 0, self.layout.mem_bytes)
        setup, base, offset = self._based(address)
        self.add(op, setup + [load(op, self.reg(), base, offset)])

    def store(self) -> None:
        op = self.rng.choice(sorted(STORE_SIZES))
        layout = self.layout
        address = self._address(STORE_SIZES[op], layout.data_base, layout.data_base + layout.data_bytes)
        setup, base, offset = self._based(address)
        self.add(op, setup + [store(op, self.reg(), base, offset)])

    def _forward_target(self, index: int, starts: list[int]) -> int:
        """Start address of an item 1..4 items after `index` (or the dump, if the body ends sooner)."""
        return starts[min(index + self.rng.randrange(1, 5), len(starts) - 1)]

    def forward_branch(self) -> None:
        op = self.rng.choice(sorted(BRANCH_FUNCT3))
        rs1, rs2 = self.reg(), self.reg()
        index = len(self.items)
        self.add_fixup(
            op, 1, lambda starts: [branch(op, rs1, rs2, self._forward_target(index, starts) - starts[index])]
        )

    def forward_jal(self) -> None:
        rd = self.reg()
        index = len(self.items)
        self.add_fixup("jal", 1, lambda starts: [jal(rd, self._forward_target(index, starts) - starts[index])])

    def forward_jalr(self) -> None:
        rd, base = self.reg(), self.reg(allow_zero=False)
        offset = self.rng.randrange(-2048, 2048)
        odd = self.rng.random() < 0.3  # bit 0 of the sum is cleared by JALR
        index = len(self.items)

        def make(starts: list[int]) -> list[int]:
            target = self._forward_target(index, starts)
            return li(base, target - offset + odd) + [jalr(rd, base, offset)]

        # li() may take one or two words depending on the value: reserve two and pad with a no-op.
        self.add_fixup("jalr", 3, lambda starts: (make(starts) + [addi(0, 0, 0)])[:3])

    def loop(self) -> None:
        """A bounded backward loop: counter <- n; body of ALU items not writing the counter; bne back."""
        rng = self.rng
        counter = self.reg(allow_zero=False)
        iterations = rng.randrange(1, 6)
        inner: list[int] = []
        for _ in range(rng.randrange(1, 4)):
            rd = rng.choice([r for r in range(32) if r != counter])
            op = rng.choice(sorted(ALU_FUNCT3))
            inner.append(alu(op, rd, self.reg(), self.reg()))
        inner.append(addi(counter, counter, -1))
        words = li(counter, iterations) + inner + [branch("bne", counter, 0, -4 * len(inner))]
        self.add("loop", words)

    def csr_read(self) -> None:
        rng = self.rng
        form = rng.choice(("csrrs", "csrrc", "csrrsi", "csrrci"))
        if rng.random() < 0.6:
            self.add("csr mhartid", [csr(form, self.reg(), Csr.MHARTID)])
        else:
            # Legal, but the value differs between model and gateware: overwrite it at once.
            rd = self.reg(allow_zero=False)
            number = rng.choice((Csr.CYCLE, Csr.CYCLEH, Csr.TIME, Csr.TIMEH))
            self.add("csr counter", [csr(form, rd, number), addi(rd, 0, rng.randrange(-2048, 2048))])

    def message(self) -> None:
        rng = self.rng
        self.add("message", [custom0(self.reg(), rng.randrange(8), self.reg(), self.reg(), rng.randrange(128))])

    def fence(self) -> None:
        self.add("fence", [self.rng.choice((FENCE, FENCE_I))])

    def random_word(self) -> None:
        """A random legal word of a side-effect-free opcode (odd fields included)."""
        while True:
            opcode = self.rng.choice(sorted(_SAFE_RANDOM_OPCODES))
            word = (self.rng.getrandbits(25) << 7) | opcode
            if classify(word) == "legal":
                self.add("random", [word])
                return

    # -- faults -----------------------------------------------------------------------------------------

    def fault(self, kind: str) -> None:
        rng = self.rng
        layout = self.layout
        if kind in ("load_misaligned", "store_misaligned"):
            is_load = kind == "load_misaligned"
            op = rng.choice(("lh", "lhu", "lw") if is_load else ("sh", "sw"))
            size = (LOAD_SIZES if is_load else STORE_SIZES)[op]
            misalign = rng.randrange(1, size) if size == 4 else 1
            # Sometimes also outside memory: misaligned must win.
            high = layout.mem_bytes + 4096 if rng.random() < 0.3 else layout.mem_bytes
            address = self._address(size, 0, high) + misalign
            setup, base, offset = self._based(address)
            word = load(op, self.reg(), base, offset) if is_load else store(op, self.reg(), base, offset)
            self.add(kind, setup + [word])
        elif kind in ("load_outside", "store_outside"):
            is_load = kind == "load_outside"
            op = rng.choice(sorted(LOAD_SIZES if is_load else STORE_SIZES))
            size = (LOAD_SIZES if is_load else STORE_SIZES)[op]
            address = rng.choice((layout.mem_bytes, MASK32 + 1 - size, self._address(size, layout.mem_bytes, 1 << 32)))
            setup, base, offset = self._based(address)
            word = load(op, self.reg(), base, offset) if is_load else store(op, self.reg(), base, offset)
            self.add(kind, setup + [word])
        elif kind == "illegal":
            self.add(kind, [random_illegal_word(rng)])
        elif kind == "jump_misaligned":
            rd = self.reg()
            if rng.random() < 0.5:
                self.add(kind, [jal(rd, rng.randrange(-64, 64) * 4 + 2)])
            else:
                base = self.reg(allow_zero=False)
                target = rng.randrange(0, layout.mem_bytes // 4) * 4 + rng.choice((2, 3))
                self.add(kind, li(base, target) + [jalr(rd, base, 0)])
        elif kind == "branch_misaligned":
            rs = self.reg()
            op = rng.choice(("beq", "bge", "bgeu"))  # always taken with rs1 = rs2
            self.add(kind, [branch(op, rs, rs, rng.randrange(-64, 64) * 4 + 2)])
        elif kind == "fetch_outside":
            rd, base = self.reg(), self.reg(allow_zero=False)
            target = rng.choice((layout.mem_bytes, rng.randrange(layout.mem_bytes // 4, 1 << 30) * 4))
            self.add(kind, li(base, target) + [jalr(rd, base, 0)])
        else:
            raise ValueError(f"unknown fault kind {kind!r}")


_CLASSIFIER = TileModel(1024, has_instret=False)


def classify(word: int) -> str:
    """'illegal' or 'legal', as the golden model (without a message unit and instret) decodes `word`."""
    classifier = _CLASSIFIER
    classifier.load([word])
    classifier.reset()
    classifier.step()
    return "illegal" if classifier.state == TileState.TRAPPED and classifier.cause == Cause.ILLEGAL_INSN else "legal"


def random_illegal_word(rng: random.Random) -> int:
    """A random word that is not a tile instruction: either fully random or near a legal encoding."""
    while True:
        style = rng.random()
        if style < 0.3:
            word = rng.getrandbits(32)
        elif style < 0.5:
            word = rng.choice((0, MASK32, csr("csrrw", 1, Csr.MHARTID), csr("csrrs", 1, Csr.INSTRET), 0x3020_0073))
        else:
            # A legal-looking opcode with random other fields: exercises funct3/funct7/CSR decoding.
            opcode = rng.choice([op.value for op in Opcode])
            word = (rng.getrandbits(25) << 7) | opcode
        if classify(word) == "illegal":
            return word


_ITEM_WEIGHTS: tuple[tuple[str, int], ...] = (
    ("alu_reg", 20),
    ("alu_imm", 20),
    ("upper", 5),
    ("load", 12),
    ("store", 12),
    ("forward_branch", 10),
    ("forward_jal", 3),
    ("forward_jalr", 3),
    ("loop", 3),
    ("csr_read", 3),
    ("fence", 1),
    ("random_word", 4),
)


def generate(
    seed: int,
    mem_bytes: int = 2048,
    body_items: int = 40,
    fault: str | None = None,
    tile_id: int | None = None,
    messages: bool = False,
) -> RandomProgram:
    """A random program. `fault` = one of FAULT_KINDS (placed at a random point in the body), "random" (any
    kind, or none), or None (the program runs to its ECALL / EBREAK). `messages`: also emit custom-0 message
    instructions, for a tile whose message unit behaves as `OperandMessageUnit`.
    """
    rng = random.Random(seed)
    layout = Layout.for_memory(mem_bytes)
    if fault == "random":
        fault = rng.choice((None, *FAULT_KINDS))
    if fault is not None and fault not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {fault!r}; expected one of {', '.join(FAULT_KINDS)}")
    tile_id = rng.getrandbits(8) if tile_id is None else tile_id

    prologue: list[int] = []
    registers = list(range(1, 32))
    rng.shuffle(registers)
    builder = _Builder(rng, layout)
    for register in registers:
        prologue += li(register, builder.value())

    body_start = 4 + 4 * len(prologue)
    item_weights = _ITEM_WEIGHTS + ((("message", 15),) if messages else ())
    names = [name for name, _ in item_weights]
    weights = [weight for _, weight in item_weights]
    fault_at = rng.randrange(body_items) if fault is not None else -1
    for index in range(body_items):
        if index == fault_at:
            builder.fault(fault)  # type: ignore[arg-type]
        getattr(builder, rng.choices(names, weights)[0])()

    # Item start addresses, the last one being the dump routine.
    starts = [body_start]
    for item in builder.items:
        starts.append(starts[-1] + 4 * len(item))
    for index, make in builder.fixups:
        words = make(starts)
        assert len(words) == len(builder.items[index]), "a fixed-up item changed length"
        builder.items[index] = words
    dump_entry = starts[-1]

    dump = [store("sw", register, 0, layout.dump_address + 4 * (register - 1)) for register in range(1, 32)]
    dump.append(ECALL if rng.random() < 0.8 else EBREAK)
    code = [jal(0, 4), *prologue, *(word for item in builder.items for word in item), *dump]
    if 4 * len(code) > layout.code_bytes:
        raise ValueError(f"seed {seed}: {len(code)} code words exceed the code region; use fewer body items")
    words = code + [0] * (layout.code_bytes // 4 - len(code))
    words += [rng.getrandbits(32) for _ in range(layout.data_bytes // 4)]
    return RandomProgram(
        seed=seed,
        layout=layout,
        words=words,
        dump_entry=dump_entry,
        tile_id=tile_id,
        faults=fault is not None,
        messages=messages,
        description=builder.description,
    )


@dataclass(frozen=True)
class Outcome:
    """What a tile shows after a random program: the architectural state to compare."""

    state: int
    cause: int
    pc: int
    memory: list[int]  # every word of tile memory
    registers: list[int] | None = None  # x1..x31 from the dump, when a dump was made


class OperandMessageUnit:
    """A deterministic stand-in message unit for random programs, usable by the model and by a gateware bench.

    Its answer depends only on the operands, so the model (asked once per step) and the gateware (asked once per
    clock while `valid`) agree although they ask a different number of times: it is not ready for the first
    (rs1 ^ rs2) % 3 asks of an instruction, then funct3 = 7 faults with MESSAGE_FAULT and every other funct3
    returns a mix of the operands.
    """

    def __init__(self) -> None:
        self._pending: tuple[int, int, int, int] | None = None
        self._asks = 0

    def execute(self, funct3: int, funct7: int, rs1: int, rs2: int) -> MessageReply | None:
        operands = (funct3, funct7, rs1, rs2)
        if operands != self._pending:
            self._pending, self._asks = operands, 0
        self._asks += 1
        if self._asks <= (rs1 ^ rs2) % 3:
            return None
        self._pending = None
        if funct3 == 7:
            return MessageReply(fault=True, cause=Cause.MESSAGE_FAULT)
        return MessageReply(result=(rs1 + 3 * rs2 + (funct7 << 3) + funct3) & MASK32)


def run_on_model(program: RandomProgram, max_steps: int = 20_000) -> Outcome:
    """Run on the golden model (without instret: the gateware lacks it), with a second phase after a fault."""
    unit = OperandMessageUnit() if program.messages else None
    tile = TileModel(program.layout.mem_bytes, tile_id=program.tile_id, message_unit=unit, has_instret=False)
    tile.load(program.words)
    state, cause = tile.run(max_steps)
    pc = tile.pc
    if state != TileState.TRAPPED:
        raise RuntimeError(f"seed {program.seed}: program did not stop within {max_steps} steps (pc {pc:#x})")
    first = tile.words()
    if cause in (Cause.ECALL, Cause.BREAKPOINT) and tile.pc == program.dump_entry + 4 * 32:
        registers = dump_registers(first, program)
    else:
        tile.load([program.second_phase_entry_word()])
        tile.reset()
        tile.run(max_steps)
        registers = dump_registers(tile.words(), program)
    return Outcome(state=state, cause=cause, pc=pc, memory=first, registers=registers)


def dump_registers(memory: list[int], program: RandomProgram) -> list[int]:
    base = program.dump_address // 4
    return memory[base : base + DUMP_WORDS]

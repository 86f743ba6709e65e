"""Golden reference model of one Tessera tile: the tile ISA exactly as the project contract states it.

The gateware (`tessera.hw.core`, `tessera.hw.tile`) is checked against this model instruction by instruction
and by whole random programs, so the model favours plainness over cleverness; it is still quick enough
(a per-instance decode cache) to run compiled C programs in tests.

Contract in short (docs/isa.md has the long form):
- RV32I over a private byte memory [0, mem_bytes); reset pc = 0; x1..x31 are not cleared by reset.
- Any fault stops the tile in TRAPPED with `cause`, `pc` at the faulting instruction, and no side effects.
  Fetch outside memory -> FETCH_FAULT (pc = the bad address); jump or taken branch to a target that is not a
  multiple of 4 -> INSN_MISALIGNED (pc = the jump); misaligned load/store -> *_MISALIGNED, which wins over
  *_FAULT for an access that is both misaligned and outside memory.
- ECALL / EBREAK stop the tile in TRAPPED (cause ECALL / BREAKPOINT) but retire: `pc` already points past them
  and instret counts them, so `run` continues with the next instruction.
- CSRs are read-only: CSRRS/CSRRC with rs1 = x0 and CSRRSI/CSRRCI with uimm = 0 read them; CSRRW/CSRRWI, any
  other form and any unknown CSR are ILLEGAL_INSN. Reading instret gives the count before the reading instruction.
- Custom-0 goes to the message unit (see `MessageUnit`); without one it is ILLEGAL_INSN.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from tessera.firmware.isa import (
    MASK32,
    RESET_PC,
    Cause,
    Csr,
    Opcode,
    TileState,
    bits,
    imm_b,
    imm_i,
    imm_j,
    imm_s,
    to_signed,
)

_WORD = struct.Struct("<I")
_HALF = struct.Struct("<H")

#: How many distinct instruction words a model remembers decoded before it starts afresh (bounds memory use
#: when one model runs many random programs).
_DECODE_CACHE_LIMIT = 1 << 16


@dataclass(frozen=True)
class MessageReply:
    """A message unit's answer once it is ready, as on the core's message port when ready = 1.

    fault = False: `result` goes to rd (unless rd = x0). fault = True: the tile traps with `cause` at the
    message instruction and rd is left alone.
    """

    result: int = 0
    fault: bool = False
    cause: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.result <= MASK32:
            raise ValueError(f"message result {self.result:#x} does not fit 32 bits")
        if not 0 <= self.cause < 32:
            raise ValueError(f"message fault cause {self.cause} does not fit the 5-bit cause port")


class MessageUnit(Protocol):
    """What the model needs from a message unit: the core's message port seen from the core's side.

    `execute` is called with the instruction's funct3, funct7 and the values of rs1 and rs2. Returning None means
    "not ready": the tile goes to SLEEPING and asks again, with the same operands, on its next step (as the core
    keeps `valid` raised with stable operands). A unit must therefore not act twice on one instruction just
    because it is asked again while it was not ready.
    """

    def execute(self, funct3: int, funct7: int, rs1: int, rs2: int) -> MessageReply | None: ...


class _Trap(Exception):
    """Internal: the instruction at the current pc faults with `cause`."""

    def __init__(self, cause: int) -> None:
        super().__init__(cause)
        self.cause = cause


# Pure ALU functions on unsigned 32-bit operands, shared by the register and immediate forms.
def _add(a: int, b: int) -> int:
    return (a + b) & MASK32


def _sub(a: int, b: int) -> int:
    return (a - b) & MASK32


def _sll(a: int, b: int) -> int:
    return (a << (b & 31)) & MASK32


def _slt(a: int, b: int) -> int:
    return int(to_signed(a) < to_signed(b))


def _sltu(a: int, b: int) -> int:
    return int(a < b)


def _xor(a: int, b: int) -> int:
    return a ^ b


def _srl(a: int, b: int) -> int:
    return a >> (b & 31)


def _sra(a: int, b: int) -> int:
    return (to_signed(a) >> (b & 31)) & MASK32


def _or(a: int, b: int) -> int:
    return a | b


def _and(a: int, b: int) -> int:
    return a & b


# funct3 -> ALU function for OP-IMM / OP (funct7 = 0), with the funct7 = 0x20 variants listed separately.
_ALU = {0: _add, 1: _sll, 2: _slt, 3: _sltu, 4: _xor, 5: _srl, 6: _or, 7: _and}
_ALU_ALT = {0: _sub, 5: _sra}

# funct3 -> comparison on unsigned operands for BRANCH.
_BRANCH = {
    0: lambda a, b: a == b,
    1: lambda a, b: a != b,
    4: lambda a, b: to_signed(a) < to_signed(b),
    5: lambda a, b: to_signed(a) >= to_signed(b),
    6: lambda a, b: a < b,
    7: lambda a, b: a >= b,
}

# funct3 -> (size in bytes, sign-extend) for LOAD; funct3 -> size for STORE.
_LOAD = {0: (1, True), 1: (2, True), 2: (4, False), 4: (1, False), 5: (2, False)}
_STORE = {0: 1, 1: 2, 2: 4}

_ECALL_WORD = 0x0000_0073
_EBREAK_WORD = 0x0010_0073

# A decoded instruction: (handler, rd, rs1, rs2, imm, aux). The handler returns the next pc, or None when the
# instruction did not complete (a message instruction waiting for its unit).
_Decoded = tuple


class TileModel:
    """One tile: core state, private memory and the control interface of `hw/tile.py`.

    Control mirrors the tile's pulses: `run` (start or continue from pc when HALTED or TRAPPED), `halt`,
    `reset` (the reset_pc pulse) and `fault_in` (an outside fault such as the watchdog).
    `step` executes one instruction (starting the tile if it is HALTED or TRAPPED, as a debugger single-step).

    `instret` always counts retired instructions (ECALL and EBREAK included, as the core's `retired` pulse);
    has_instret decides whether the instret/instreth CSRs exist. The core (hw/core.py) leaves them out to save
    logic, so reading them is ILLEGAL_INSN by default here too.

    cycle_source gives the chip-wide 64-bit counter read by cycle/time CSRs; by default it is `self.cycle`,
    which the model advances by one per step (a stand-in: the gateware takes more than one clock per instruction).
    """

    def __init__(
        self,
        mem_bytes: int,
        tile_id: int = 0,
        message_unit: MessageUnit | None = None,
        *,
        has_instret: bool = False,
        cycle_source: Callable[[], int] | None = None,
    ) -> None:
        if mem_bytes < 1024 or mem_bytes & (mem_bytes - 1):
            raise ValueError(f"mem_bytes must be a power of two >= 1024, not {mem_bytes}")
        if not 0 <= tile_id <= MASK32:
            raise ValueError(f"tile_id {tile_id} does not fit 32 bits")
        self.mem_bytes = mem_bytes
        self.tile_id = tile_id
        self.message_unit = message_unit
        self.has_instret = has_instret
        self.cycle_source = cycle_source if cycle_source is not None else (lambda: self.cycle)
        self.mem = bytearray(mem_bytes)
        self.regs = [0] * 32
        self.pc = RESET_PC
        self.state = TileState.HALTED
        self.cause = 0
        self.instret = 0
        self.cycle = 0
        self._decoded: dict[int, _Decoded] = {}
        self._csrs = self._csr_readers()

    # -- host side: memory and control ------------------------------------------------------------------

    def load(self, words: Iterable[int], base: int = 0) -> None:
        """Write 32-bit words into memory from byte address `base` (a multiple of 4), as the debug port does."""
        if base % 4:
            raise ValueError(f"load base {base:#x} is not a multiple of 4")
        address = base
        for word in words:
            if not 0 <= word <= MASK32:
                raise ValueError(f"word {word:#x} at {address:#x} does not fit 32 bits")
            if address + 4 > self.mem_bytes:
                raise ValueError(f"load past the end of memory: {address:#x} >= {self.mem_bytes:#x}")
            _WORD.pack_into(self.mem, address, word)
            address += 4

    def load_bytes(self, data: bytes, base: int = 0) -> None:
        """Write a flat image (e.g. objcopy -O binary output) into memory from byte address `base`."""
        if base < 0 or base + len(data) > self.mem_bytes:
            raise ValueError(f"image of {len(data)} bytes at {base:#x} does not fit {self.mem_bytes} bytes of memory")
        self.mem[base : base + len(data)] = data

    def read_word(self, address: int) -> int:
        """The 32-bit word at a byte address (a multiple of 4 inside memory)."""
        if address % 4 or not 0 <= address < self.mem_bytes:
            raise ValueError(f"word address {address:#x} is misaligned or outside {self.mem_bytes} bytes of memory")
        return _WORD.unpack_from(self.mem, address)[0]

    def words(self) -> list[int]:
        """The whole memory as 32-bit words."""
        return list(struct.unpack(f"<{self.mem_bytes // 4}I", self.mem))

    def reset(self) -> None:
        """The reset_pc pulse: pc <- 0, HALTED, cause and instret cleared; registers and memory are kept."""
        self.pc = RESET_PC
        self.state = TileState.HALTED
        self.cause = 0
        self.instret = 0

    def halt(self) -> None:
        """The halt pulse: a RUNNING or SLEEPING tile stops (a waiting message instruction is abandoned)."""
        if self.state in (TileState.RUNNING, TileState.SLEEPING):
            self.state = TileState.HALTED

    def fault_in(self, cause: int) -> None:
        """An outside fault (e.g. the watchdog): trap with `cause` at the current pc."""
        if not 0 <= cause < 32:
            raise ValueError(f"fault cause {cause} does not fit the 5-bit cause port")
        self.state = TileState.TRAPPED
        self.cause = cause

    def run(self, max_steps: int) -> tuple[TileState, int]:
        """Start (or continue) and execute until the tile stops or `max_steps` steps have passed.

        Returns (state, cause). A state of RUNNING or SLEEPING means the step budget ran out first.
        """
        if self.state in (TileState.HALTED, TileState.TRAPPED):
            self.state = TileState.RUNNING
        execute = self._execute
        for _ in range(max_steps):
            execute()
            if self.state is TileState.TRAPPED or self.state is TileState.HALTED:
                break
        return self.state, self.cause

    def step(self) -> None:
        """Execute one instruction (or ask a not-ready message unit once more), starting the tile if stopped."""
        if self.state in (TileState.HALTED, TileState.TRAPPED):
            self.state = TileState.RUNNING
        self._execute()

    # -- the core ------------------------------------------------------------------------------------

    def _execute(self) -> None:
        self.cycle += 1
        pc = self.pc
        try:
            if pc & 3:
                raise _Trap(Cause.INSN_MISALIGNED)
            if pc >= self.mem_bytes:
                raise _Trap(Cause.FETCH_FAULT)
            insn = _WORD.unpack_from(self.mem, pc)[0]
            decoded = self._decoded.get(insn)
            if decoded is None:
                decoded = self._decode(insn)
            handler, rd, rs1, rs2, imm, aux = decoded
            next_pc = handler(self, pc, rd, rs1, rs2, imm, aux)
        except _Trap as trap:
            self.state = TileState.TRAPPED
            self.cause = trap.cause
            return
        if next_pc is not None:
            self.pc = next_pc
            self.instret += 1

    def _decode(self, insn: int) -> _Decoded:
        """Decode one instruction word (illegal words decode to a handler that traps)."""
        if len(self._decoded) >= _DECODE_CACHE_LIMIT:
            self._decoded.clear()
        decoded = self._decode_uncached(insn)
        self._decoded[insn] = decoded
        return decoded

    def _decode_uncached(self, insn: int) -> _Decoded:
        opcode = insn & 0x7F
        rd = bits(insn, 11, 7)
        funct3 = bits(insn, 14, 12)
        rs1 = bits(insn, 19, 15)
        rs2 = bits(insn, 24, 20)
        funct7 = bits(insn, 31, 25)
        illegal = (TileModel._illegal, 0, 0, 0, 0, None)

        if opcode == Opcode.OP_IMM:
            if funct3 == 1:
                return (TileModel._alu_imm, rd, rs1, 0, rs2, _sll) if funct7 == 0 else illegal
            if funct3 == 5:
                if funct7 == 0:
                    return (TileModel._alu_imm, rd, rs1, 0, rs2, _srl)
                return (TileModel._alu_imm, rd, rs1, 0, rs2, _sra) if funct7 == 0x20 else illegal
            return (TileModel._alu_imm, rd, rs1, 0, imm_i(insn) & MASK32, _ALU[funct3])
        if opcode == Opcode.OP:
            if funct7 == 0:
                return (TileModel._alu_reg, rd, rs1, rs2, 0, _ALU[funct3])
            if funct7 == 0x20 and funct3 in _ALU_ALT:
                return (TileModel._alu_reg, rd, rs1, rs2, 0, _ALU_ALT[funct3])
            return illegal
        if opcode == Opcode.LOAD:
            return (TileModel._load, rd, rs1, 0, imm_i(insn), _LOAD[funct3]) if funct3 in _LOAD else illegal
        if opcode == Opcode.STORE:
            return (TileModel._store, 0, rs1, rs2, imm_s(insn), _STORE[funct3]) if funct3 in _STORE else illegal
        if opcode == Opcode.BRANCH:
            return (TileModel._branch, 0, rs1, rs2, imm_b(insn), _BRANCH[funct3]) if funct3 in _BRANCH else illegal
        if opcode == Opcode.LUI:
            return (TileModel._lui, rd, 0, 0, insn & 0xFFFF_F000, None)
        if opcode == Opcode.AUIPC:
            return (TileModel._auipc, rd, 0, 0, insn & 0xFFFF_F000, None)
        if opcode == Opcode.JAL:
            return (TileModel._jal, rd, 0, 0, imm_j(insn), None)
        if opcode == Opcode.JALR:
            return (TileModel._jalr, rd, rs1, 0, imm_i(insn), None) if funct3 == 0 else illegal
        if opcode == Opcode.MISC_MEM:
            # FENCE (funct3 0) and FENCE.I (funct3 1); their other fields are reserved and ignored, as RV32I says.
            return (TileModel._fence, 0, 0, 0, 0, None) if funct3 in (0, 1) else illegal
        if opcode == Opcode.SYSTEM:
            if insn == _ECALL_WORD:
                return (TileModel._stop_after, 0, 0, 0, 0, Cause.ECALL)
            if insn == _EBREAK_WORD:
                return (TileModel._stop_after, 0, 0, 0, 0, Cause.BREAKPOINT)
            # CSRRS, CSRRC (funct3 2, 3) with rs1 = x0; CSRRSI, CSRRCI (6, 7) with uimm = 0: pure reads.
            if funct3 in (2, 3, 6, 7) and rs1 == 0:
                csr = bits(insn, 31, 20)
                if csr in self._csrs:
                    return (TileModel._csr_read, rd, 0, 0, 0, csr)
            return illegal
        if opcode == Opcode.CUSTOM0 and self.message_unit is not None:
            return (TileModel._message, rd, rs1, rs2, 0, (funct3, funct7))
        return illegal

    def _csr_readers(self) -> dict[int, Callable[[TileModel], int]]:
        readers: dict[int, Callable[[TileModel], int]] = {
            Csr.CYCLE: lambda t: t.cycle_source() & MASK32,
            Csr.CYCLEH: lambda t: (t.cycle_source() >> 32) & MASK32,
            Csr.TIME: lambda t: t.cycle_source() & MASK32,
            Csr.TIMEH: lambda t: (t.cycle_source() >> 32) & MASK32,
            Csr.MHARTID: lambda t: t.tile_id,
        }
        if self.has_instret:
            readers[Csr.INSTRET] = lambda t: t.instret & MASK32
            readers[Csr.INSTRETH] = lambda t: (t.instret >> 32) & MASK32
        return readers

    # Handlers: (self, pc, rd, rs1, rs2, imm, aux) -> next pc, or None if the instruction has not completed.
    # A fault raises _Trap before any architectural state changes.

    def _illegal(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: object) -> int | None:
        raise _Trap(Cause.ILLEGAL_INSN)

    def _alu_imm(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: Callable[[int, int], int]) -> int:
        if rd:
            self.regs[rd] = aux(self.regs[rs1], imm)
        return pc + 4

    def _alu_reg(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: Callable[[int, int], int]) -> int:
        if rd:
            self.regs[rd] = aux(self.regs[rs1], self.regs[rs2])
        return pc + 4

    def _lui(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: object) -> int:
        if rd:
            self.regs[rd] = imm
        return pc + 4

    def _auipc(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: object) -> int:
        if rd:
            self.regs[rd] = (pc + imm) & MASK32
        return pc + 4

    def _jump_target_checked(self, target: int) -> int:
        if target & 3:
            raise _Trap(Cause.INSN_MISALIGNED)
        return target

    def _jal(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: object) -> int:
        target = self._jump_target_checked((pc + imm) & MASK32)
        if rd:
            self.regs[rd] = (pc + 4) & MASK32
        return target

    def _jalr(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: object) -> int:
        target = self._jump_target_checked((self.regs[rs1] + imm) & MASK32 & ~1)
        if rd:
            self.regs[rd] = (pc + 4) & MASK32
        return target

    def _branch(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: Callable[[int, int], bool]) -> int:
        if aux(self.regs[rs1], self.regs[rs2]):
            return self._jump_target_checked((pc + imm) & MASK32)
        return pc + 4

    def _load(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: tuple[int, bool]) -> int:
        size, signed = aux
        address = (self.regs[rs1] + imm) & MASK32
        if address & (size - 1):
            raise _Trap(Cause.LOAD_MISALIGNED)
        if address >= self.mem_bytes:
            raise _Trap(Cause.LOAD_FAULT)
        if size == 4:
            value = _WORD.unpack_from(self.mem, address)[0]
        elif size == 2:
            value = _HALF.unpack_from(self.mem, address)[0]
            if signed and value & 0x8000:
                value |= 0xFFFF_0000
        else:
            value = self.mem[address]
            if signed and value & 0x80:
                value |= 0xFFFF_FF00
        if rd:
            self.regs[rd] = value
        return pc + 4

    def _store(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: int) -> int:
        size = aux
        address = (self.regs[rs1] + imm) & MASK32
        if address & (size - 1):
            raise _Trap(Cause.STORE_MISALIGNED)
        if address >= self.mem_bytes:
            raise _Trap(Cause.STORE_FAULT)
        value = self.regs[rs2]
        if size == 4:
            _WORD.pack_into(self.mem, address, value)
        elif size == 2:
            _HALF.pack_into(self.mem, address, value & 0xFFFF)
        else:
            self.mem[address] = value & 0xFF
        return pc + 4

    def _fence(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: object) -> int:
        return pc + 4

    def _stop_after(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: int) -> int:
        # ECALL / EBREAK retire and stop; `run` continues after them.
        self.state = TileState.TRAPPED
        self.cause = aux
        return pc + 4

    def _csr_read(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: int) -> int:
        value = self._csrs[aux](self)
        if rd:
            self.regs[rd] = value
        return pc + 4

    def _message(self, pc: int, rd: int, rs1: int, rs2: int, imm: int, aux: tuple[int, int]) -> int | None:
        funct3, funct7 = aux
        assert self.message_unit is not None  # decoded as a message instruction only when a unit is present
        reply = self.message_unit.execute(funct3, funct7, self.regs[rs1], self.regs[rs2])
        if reply is None:
            self.state = TileState.SLEEPING
            return None
        if reply.fault:
            raise _Trap(reply.cause)
        self.state = TileState.RUNNING
        if rd:
            self.regs[rd] = reply.result
        return pc + 4

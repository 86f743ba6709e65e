"""Fixed pieces of generated service code: register names, message instruction words, helper routines.

The helper routines (`__mul`, `__divmod`, `__snapshot`) are emitted into a service only when its code uses them.
They take operands in a0 and a1, return in a0 (and a1) and clobber only a0, a1, t4, t5, t6 and ra, so compiled
code keeps its expression temporaries (t0-t3, a2-a7) live across them.
"""

from __future__ import annotations

from tessera.firmware.isa import Opcode, encode_r
from tessera.hw.noc_layouts import HOST_NODE, MAX_WORDS, MessageOp
from tessera.os.chip import DOWN_TAG

REGISTER_NUMBERS = {
    "zero": 0, "ra": 1, "sp": 2, "gp": 3, "tp": 4, "t0": 5, "t1": 6, "t2": 7, "s0": 8, "s1": 9,
    "a0": 10, "a1": 11, "a2": 12, "a3": 13, "a4": 14, "a5": 15, "a6": 16, "a7": 17,
    "s2": 18, "s3": 19, "s4": 20, "s5": 21, "s6": 22, "s7": 23, "s8": 24, "s9": 25, "s10": 26, "s11": 27,
    "t3": 28, "t4": 29, "t5": 30, "t6": 31,
}

#: Expression temporaries, by depth.
TEMPS = ("t0", "t1", "t2", "t3", "a2", "a3", "a4", "a5", "a6", "a7")
#: Homes of locals in functions that call others (callee-saved).
SAVED = ("s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11")
#: Extra homes of locals in leaf functions (nothing they call can clobber them).
LEAF_HOMES = ("a0", "a1", "t4", "t5", "t6")
ARGS = ("a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7")

#: Tag of log(...) messages to the host.
LOG_TAG = 0xFFFF
#: A received message in memory: sender, tag, length (0 = no message), then MAX_WORDS words.
MSG_SENDER, MSG_TAG, MSG_LENGTH, MSG_WORDS = 0, 4, 8, 12
MSG_BYTES = MSG_WORDS + 4 * MAX_WORDS
#: The service header: start entry, handle entry, initial stack pointer, end of the image (the stack limit).
HEADER_BYTES = 16
#: A Python service's start entry (header word 0) calls init; the word after it, the upgrade entry, calls upgrade
#: (or init when the service has no upgrade). After `tessera reload` hands the state over, the host points header
#: word 0 at the upgrade entry before the tile runs (docs/services.md, "Start-up").
UPGRADE_ENTRY_OFFSET = 4

#: Snapshot messages to the host (docs/host-os.md, "Persistent services"): (byte address, 1..3 words) data
#: messages, then (SNAPSHOT_COMMIT, words sent) to complete the snapshot.
SNAPSHOT_TAG = 0xFFFD
SNAPSHOT_COMMIT = 0xFFFF_FFFF
#: Memory words one snapshot data message carries after its address.
SNAPSHOT_WORDS_PER_MESSAGE = MAX_WORDS - 1
#: Tag of `tessera reload`'s fence: the host's routine on a tile stopped at its boundary sends it (os/reload.py).
FENCE_TAG = 0xFFFC
#: Tags the host gives a fixed meaning (docs/host-os.md): a service may not send them to the host itself.
#: Tag -> what the tag means and what to write instead.
HOST_RESERVED_TAGS = {
    LOG_TAG: "the host's log tag: write log(...)",
    DOWN_TAG: "the DOWN report the chip sends when a tile stops: to stop, fail an `assert`",
    SNAPSHOT_TAG: "the snapshot tag: call snapshot(), which sends the fields in the format the host stores",
    FENCE_TAG: "the reload fence only the host's reload routine sends: use a tag below 0xFFFC",
}

CSR_CYCLE = 0xC00
CSR_MHARTID = 0xF14

__all__ = ["HOST_NODE", "MAX_WORDS"]


def message_word(op: MessageOp, rd: str = "zero", rs1: str = "zero", rs2: str = "zero") -> str:
    """One message instruction as a `.word` line (the assembler need not know the mnemonics)."""
    word = encode_r(Opcode.CUSTOM0, REGISTER_NUMBERS[rd], op.funct3, REGISTER_NUMBERS[rs1], REGISTER_NUMBERS[rs2],
                    op.funct7)
    return f".word {word:#010x}  # msg.{op.name.lower()} {rd}, {rs1}, {rs2}"


MUL = """\
__mul:                      # a0 * a1 -> a0 (wrapping); shift-and-add over the smaller operand
    bgeu a0, a1, .Lmul_go
    mv t5, a0
    mv a0, a1
    mv a1, t5
.Lmul_go:
    mv t6, a0
    li a0, 0
.Lmul_bit:
    andi t5, a1, 1
    beqz t5, .Lmul_skip
    add a0, a0, t6
.Lmul_skip:
    slli t6, t6, 1
    srli a1, a1, 1
    bnez a1, .Lmul_bit
    ret
"""

def snapshot_routine() -> str:
    """`__snapshot`: memory [a0, a0 + 4 * a1) to the host as one snapshot (SNAPSHOT_TAG messages and a commit)."""
    put = {register: message_word(MessageOp.PUT, rs1=register) for register in ("a0", "a1", "t4")}
    send = message_word(MessageOp.SEND, rs1="t6", rs2="t4")
    return f"""\
__snapshot:                 # a0 = first byte address, a1 = words; clobbers a0, t4-t6
    mv t5, a1               # words left
    beqz t5, .Lsnap_commit
.Lsnap_message:             # (address, up to {SNAPSHOT_WORDS_PER_MESSAGE} words from it)
    {put["a0"]}
    li t6, {SNAPSHOT_WORDS_PER_MESSAGE}
.Lsnap_word:
    lw t4, 0(a0)
    {put["t4"]}
    addi a0, a0, 4
    addi t5, t5, -1
    addi t6, t6, -1
    beqz t5, .Lsnap_send
    bnez t6, .Lsnap_word
.Lsnap_send:
    li t6, {HOST_NODE}
    li t4, {SNAPSHOT_TAG:#x}
    {send}
    bnez t5, .Lsnap_message
.Lsnap_commit:              # (COMMIT, words): the snapshot is complete
    li t4, -1
    {put["t4"]}
    {put["a1"]}
    li t6, {HOST_NODE}
    li t4, {SNAPSHOT_TAG:#x}
    {send}
    ret
"""


DIVMOD = """\
__divmod:                   # a0 // a1 -> a0, a0 % a1 -> a1 (Python floor semantics); a1 = 0 faults
    beqz a1, __fault_divide_by_zero
    addi sp, sp, -8
    sw a0, 0(sp)
    sw a1, 4(sp)
    srai t4, a0, 31         # unsigned magnitudes
    xor a0, a0, t4
    sub a0, a0, t4
    srai t4, a1, 31
    xor a1, a1, t4
    sub a1, a1, t4
    li t5, 0                # remainder
    li t6, 32
.Ldiv_bit:                  # restoring division; quotient bits shift into a0 as the dividend leaves it
    srli t4, a0, 31
    slli t5, t5, 1
    or t5, t5, t4
    slli a0, a0, 1
    bltu t5, a1, .Ldiv_next
    sub t5, t5, a1
    ori a0, a0, 1
.Ldiv_next:
    addi t6, t6, -1
    bnez t6, .Ldiv_bit
    lw t4, 0(sp)            # the remainder takes the dividend's sign,
    bgez t4, .Ldiv_rpos
    neg t5, t5
.Ldiv_rpos:
    lw t6, 4(sp)            # the quotient is negative when the signs differ,
    xor t4, t4, t6
    bgez t4, .Ldiv_qpos
    neg a0, a0
.Ldiv_qpos:
    beqz t5, .Ldiv_done     # and a remainder whose sign differs from the divisor's moves one step down.
    xor t4, t5, t6
    bgez t4, .Ldiv_done
    addi a0, a0, -1
    add t5, t5, t6
.Ldiv_done:
    mv a1, t5
    addi sp, sp, 8
    ret
"""

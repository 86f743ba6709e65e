# The Tessera tile runtime: start-up, the receive-dispatch loop and the routines services call.
#
# It sits at address 0 of every tile and is the same for every service. The service image follows it at
# `runtime_end` (docs/services.md, "Runtime ABI"), starting with a four-word header:
#   +0 start entry  +4 handle entry   +8 initial stack pointer (top of memory)   +12 end of the image
# Start-up runs the start entry once: init, or after `tessera reload` handed the state over, the upgrade entry the
# host writes into +0 (docs/services.md, "The upgrade entry"); then each message is received into a record at the
# top of the stack (sender, tag, length, words) and handle(a0 = record) runs. Entries follow the RISC-V calling convention.
# A fault stops the tile (no handlers); the supervisor restarts it by reloading the image and running from 0.
#
# Message instructions (custom-0, docs/network.md) are written as .word with fixed registers:
#   msg.recv t0            0x0000228b      msg.recvt t0, a1 (rs1 = a1)   0x0405a28b
#   msg.get t0             0x0000328b      msg.fault a0 (rs1 = a0)      0x0005700b
# msg.fault (custom-0 funct3 7) is the ASSERTION trap the compiler's fault stubs reach.

    .equ MSG_SENDER, 0
    .equ MSG_TAG, 4
    .equ MSG_LENGTH, 8
    .equ MSG_WORDS, 12
    .equ MSG_BYTES, 28          # MSG_WORDS + 4 * MAX_WORDS (4)

    .text
    .globl _start
_start:
    lw sp, runtime_end+8(zero)
    addi sp, sp, -MSG_BYTES     # the record of the message being handled
    lw t0, runtime_end(zero)
    jalr ra, 0(t0)              # init() (or upgrade())
rt_dispatch:
    mv a0, sp
    jal ra, rt_receive
    lw t0, runtime_end+4(zero)
    mv a0, sp
    jalr ra, 0(t0)              # handle(record)
    j rt_dispatch

# rt_receive(a0 = record): wait for a message and copy it into the record. Returns a0 = record.
    .globl rt_receive
rt_receive:
    .word 0x0000228b            # msg.recv t0: header = src[6:0] | len[10:8] | tag[31:16], never 0
rt_fill:
    andi t1, t0, 0x7f
    sw t1, MSG_SENDER(a0)
    srli t1, t0, 16
    sw t1, MSG_TAG(a0)
    srli t1, t0, 8
    andi t1, t1, 7
    sw t1, MSG_LENGTH(a0)
    addi t2, a0, MSG_WORDS
rt_fill_word:
    .word 0x0000328b            # msg.get t0
    sw t0, 0(t2)
    addi t2, t2, 4
    addi t1, t1, -1
    bnez t1, rt_fill_word
    ret

# rt_receive_timeout(a0 = record, a1 = cycles, 0 .. 2**24-1): as rt_receive, but if no message arrives in
# time the record's length is 0 (the service language's None). Returns a0 = record.
    .globl rt_receive_timeout
rt_receive_timeout:
    .word 0x0405a28b            # msg.recvt t0, a1: header, or 0 on timeout
    bnez t0, rt_fill
    sw zero, MSG_LENGTH(a0)
    ret

# rt_sleep(a0 = cycles): return after at least a0 cycles (at once if a0 <= 0).
    .globl rt_sleep
rt_sleep:
    csrrs t0, 0xc00, zero
rt_sleep_wait:
    csrrs t1, 0xc00, zero
    sub t1, t1, t0
    blt t1, a0, rt_sleep_wait
    ret

# rt_fault(a0 = FaultReason): stop the tile with cause ASSERTION; a0 tells the debugger why.
    .globl rt_fault
rt_fault:
    .word 0x0005700b            # msg.fault a0 (not resumable: running again re-executes it)

    .align 2
runtime_end:

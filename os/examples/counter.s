# Counter in assembly on the tile runtime (as counter.py): tag ADD adds word 0 and replies the total; READ replies
# it; RESET clears it; any other tag fails like an assert (rt_fault with FaultReason ASSERT). Every reply is
# (total, requests so far).
    .equ ADD, 1
    .equ READ, 2
    .equ RESET, 3
    .equ FAULT_ASSERT, 1

    .text
    .word init, handle, TILE_MEM_BYTES, __image_end

init:
    ret

handle:                         # a0 = the message record
    lw t3, requests(zero)
    addi t3, t3, 1
    sw t3, requests(zero)
    lw t0, count(zero)
    lw t1, MSG_TAG(a0)
    li t2, ADD
    beq t1, t2, add_word
    li t2, RESET
    beq t1, t2, reset
    li t2, READ
    beq t1, t2, answer
    li a0, FAULT_ASSERT
    j rt_fault
add_word:
    lw t2, MSG_WORDS(a0)
    add t0, t0, t2
    j store
reset:
    li t0, 0
store:
    sw t0, count(zero)
answer:
    msg.put t0
    msg.put t3
    lw t1, MSG_SENDER(a0)
    lw t2, MSG_TAG(a0)
    msg.send t1, t2
    ret

    .data
__state_start:                  # the state snapshot() would send: one word each
count:
    .word 0
requests:
    .word 0
__state_end:
__image_end:

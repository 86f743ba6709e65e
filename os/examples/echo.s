# Echo in assembly on the tile runtime: replies to every message with the same words (as echo.py).
    .text
    .word init, handle, TILE_MEM_BYTES, __image_end   # the service header the runtime reads

init:
    ret

# handle(a0 = the message record: MSG_SENDER, MSG_TAG, MSG_LENGTH, MSG_WORDS)
handle:
    lw t0, MSG_LENGTH(a0)       # 1..4 words
    addi t1, a0, MSG_WORDS
put_word:
    lw t2, 0(t1)
    msg.put t2
    addi t1, t1, 4
    addi t0, t0, -1
    bnez t0, put_word
    lw t1, MSG_SENDER(a0)
    lw t2, MSG_TAG(a0)
    msg.send t1, t2             # to the sender, with its tag
    ret
__image_end:

# Counter (assembly on the tile runtime): adds each message's first word to a running total and replies with it.
    .text
    .word init, handle, TILE_MEM_BYTES, __image_end

init:
    sw zero, total(zero)
    ret

handle:
    lw t0, total(zero)
    lw t1, MSG_WORDS(a0)
    add t0, t0, t1
    sw t0, total(zero)
    .word 0x0002800b            # msg.put t0
    lw t1, MSG_SENDER(a0)
    lw t2, MSG_TAG(a0)
    .word 0x0073100b            # msg.send t1, t2
    ret

    .data
total:
    .word 0
__image_end:

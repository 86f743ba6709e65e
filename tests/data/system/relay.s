# Relay (assembly on the tile runtime): forwards each message's first word to the counter with tag 1.
    .text
    .word init, handle, TILE_MEM_BYTES, __image_end

init:
    ret

handle:
    lw t0, MSG_WORDS(a0)
    .word 0x0002800b            # msg.put t0
    li t1, NODE_counter         # the counter's tile, resolved at build time from `sends`
    li t2, 1
    .word 0x0073100b            # msg.send t1, t2
    ret
__image_end:

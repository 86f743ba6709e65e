# Echo (assembly on the tile runtime): replies to each message with its first word and the same tag.
    .text
    .word init, handle, TILE_MEM_BYTES, __image_end   # the service header the runtime reads

init:
    ret

# handle(a0 = message record: sender, tag, length, words)
handle:
    lw t0, MSG_WORDS(a0)
    .word 0x0002800b            # msg.put t0: stage the reply's only word
    lw t1, MSG_SENDER(a0)
    lw t2, MSG_TAG(a0)
    .word 0x0073100b            # msg.send t1, t2: to the sender, same tag
    ret
__image_end:

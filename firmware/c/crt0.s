# Start-up code for C programs on a Tessera tile.
#
# The tile starts at pc 0 with x1..x31 undefined (reset does not clear them), so this code gives the C
# environment everything it assumes: a stack at the top of tile memory and a zeroed .bss (the host loads only
# the flat image, which ends before .bss). main's return value is in a0 when the ECALL stops the tile; a host
# that resumes the tile lands on the same ECALL again, so a finished program stays finished.

    .section .text.start, "ax"
    .globl _start
_start:
    la      sp, __stack_top
    la      t0, __bss_start
    la      t1, __bss_end
clear_bss:
    bgeu    t0, t1, call_main
    sw      zero, 0(t0)
    addi    t0, t0, 4
    j       clear_bss
call_main:
    call    main
exit:
    ecall
    j       exit

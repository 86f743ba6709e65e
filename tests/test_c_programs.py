"""C programs compiled for a tile, run on the golden model, with results checked against Python computations."""

from __future__ import annotations

import struct
import zlib

import pytest

from tessera.firmware.cc import CompileError, Image, compile_program, toolchain_available
from tessera.firmware.isa import Cause, TileState
from tessera.sim.model import TileModel

pytestmark = pytest.mark.skipif(not toolchain_available(), reason="riscv64-unknown-elf-gcc is not installed")

MEM_BYTES = 4096


def run_image(image: Image, max_steps: int = 1_000_000) -> TileModel:
    tile = TileModel(image.mem_bytes)
    tile.load_bytes(image.data)
    assert tile.run(max_steps) == (TileState.TRAPPED, Cause.ECALL), f"stopped at pc {tile.pc:#x}"
    return tile


def word_at(tile: TileModel, image: Image, name: str) -> int:
    return tile.read_word(image.address(name))


def test_crc32_matches_zlib() -> None:
    image = compile_program("crc32", MEM_BYTES)
    message = image.initial_bytes("crc_message").rstrip(b"\0")
    tile = run_image(image)
    assert tile.regs[10] == zlib.crc32(message) == word_at(tile, image, "crc_result")


def test_sort_leaves_the_data_sorted() -> None:
    image = compile_program("sort", MEM_BYTES)
    original = image.initial_bytes("sort_data")
    count = len(original) // 4
    tile = run_image(image)
    address = image.address("sort_data")
    result = list(struct.unpack(f"<{count}i", tile.mem[address : address + 4 * count]))
    assert tile.regs[10] == 0
    assert result == sorted(struct.unpack(f"<{count}i", original))


def bench_reference(rounds: int, sieve_size: int) -> int:
    """bench.c's computation in Python (same algorithm, independent code)."""
    composite = [False] * sieve_size
    primes = 0
    for n in range(2, sieve_size):
        if not composite[n]:
            primes += 1
            for multiple in range(n * n, sieve_size, n):
                composite[multiple] = True
    table = bytearray(64)
    x, acc = 0x12345678, 0
    for r in range(rounds):
        x ^= (x << 13) & 0xFFFF_FFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFF_FFFF
        index = 4 * (x & 15)
        struct.pack_into("<I", table, index, (struct.unpack_from("<I", table, index)[0] + x) & 0xFFFF_FFFF)
        if x & 0x100:
            acc = (acc + struct.unpack_from("<I", table, 4 * ((x >> 4) & 15))[0]) & 0xFFFF_FFFF
        else:
            acc ^= x >> 3
        half = 2 * ((x >> 8) & 31)
        struct.pack_into("<H", table, half, struct.unpack_from("<H", table, half)[0] ^ (acc & 0xFFFF))
        byte = (x >> 16) & 63
        table[byte] = (table[byte] + r) & 0xFF
        if acc & 0x8000_0000:
            acc = ((acc << 1) | (acc >> 31)) & 0xFFFF_FFFF
    for i in range(16):
        acc ^= (struct.unpack_from("<I", table, 4 * i)[0] + i) & 0xFFFF_FFFF
    return ((primes << 16) ^ acc) & 0xFFFF_FFFF


def test_bench_matches_python() -> None:
    image = compile_program("bench", MEM_BYTES)
    rounds = int.from_bytes(image.initial_bytes("bench_rounds"), "little")
    sieve_size = image.symbols["sieve_composite"].size
    tile = run_image(image)
    assert tile.regs[10] == bench_reference(rounds, sieve_size) == word_at(tile, image, "bench_result")


def test_bench_rounds_can_be_patched() -> None:
    image = compile_program("bench", MEM_BYTES)
    tile = TileModel(MEM_BYTES)
    tile.load_bytes(image.data)
    tile.load([7], base=image.address("bench_rounds"))
    tile.run(1_000_000)
    assert tile.regs[10] == bench_reference(7, image.symbols["sieve_composite"].size)


def test_stack_is_at_the_top_of_memory_and_bss_is_cleared() -> None:
    image = compile_program("crc32", 2048)
    assert image.address("__stack_top") == 2048
    tile = TileModel(2048)
    tile.mem[:] = b"\xa5" * 2048  # memory is not cleared by reset: crt0 must zero .bss itself
    tile.load_bytes(image.data)
    tile.regs[1:] = [0xDEAD_BEEF] * 31
    tile.run(1_000_000)
    assert tile.regs[2] == 2048 and tile.regs[10] == word_at(tile, image, "crc_result")


def test_resuming_a_finished_program_stays_finished() -> None:
    image = compile_program("crc32", MEM_BYTES)
    tile = run_image(image)
    pc, a0 = tile.pc, tile.regs[10]
    assert tile.run(100) == (TileState.TRAPPED, Cause.ECALL) and (tile.pc, tile.regs[10]) == (pc, a0)


def test_program_too_big_for_memory_is_rejected() -> None:
    with pytest.raises(CompileError, match="does not fit tile memory"):
        compile_program("bench", 1024, min_stack=700)


def test_compile_errors_name_the_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "broken.c"
    source.write_text("int main(void) { return undefined_name; }\n")
    with pytest.raises(CompileError, match=r"broken\.c:1:\d+: error"):
        compile_program(source)

"""The Tile's Verilog under cocotb (tests/cocotb/tile_tb.py), on Verilator and Icarus.

- C programs (firmware/c) loaded through the debug port and run to their ECALL; results checked against
  Python (zlib's CRC-32, sorted()) and the golden model (bench.c, whose model run test_c_programs.py checks
  against a Python re-implementation), and the tile's `retired` pulses counted against the model's instructions.
- Random programs (sim/randprog.py) co-simulated against the golden model (sim/model.py), many per simulator
  launch: all of x1..x31, every memory word, pc, state and cause after each.
"""

from __future__ import annotations

import struct
import zlib

import pytest

from tessera.firmware.cc import Image, compile_program, toolchain_available
from tessera.firmware.isa import Cause, TileState
from tessera.sim import cocotb_runner
from tessera.sim.cocotb_tile import MEM_BYTES, TEST_MODULE, TILE_ID, build_tile
from tessera.sim.model import TileModel

C_MAX_CYCLES = 2_000_000
#: Random programs per simulator, as (first seed, count) chunks: each chunk is one simulator launch, so
#: pytest-xdist can spread them over the cores.
RANDOM_CHUNKS = {
    "verilator": [(0, 500), (500, 500), (1000, 500), (1500, 500)],
    "icarus": [(100_000, 100), (100_100, 100), (100_200, 100)],
}
RANDOM_BODY_ITEMS = 40
RANDOM_MAX_CYCLES = 400_000


def model_run(image: Image) -> TileModel:
    model = TileModel(MEM_BYTES, tile_id=TILE_ID)
    model.load_bytes(image.data)
    assert model.run(C_MAX_CYCLES) == (TileState.TRAPPED, Cause.ECALL)
    return model


def memory_bytes(words: list[int]) -> bytes:
    return struct.pack(f"<{len(words)}I", *words)


def symbol_bytes(memory: bytes, image: Image, name: str) -> bytes:
    symbol = image.symbols[name]
    return memory[symbol.address : symbol.address + symbol.size]


@pytest.mark.skipif(not toolchain_available(), reason="riscv64-unknown-elf-gcc is not installed")
@pytest.mark.parametrize("simulator", cocotb_runner.SIMULATORS)
def test_c_programs_on_tile(simulator: cocotb_runner.Simulator) -> None:
    images = {name: compile_program(name, MEM_BYTES) for name in ("crc32", "sort", "bench")}
    batch = {
        "images": [
            {"name": name, "words": image.words(), "max_cycles": C_MAX_CYCLES} for name, image in images.items()
        ],
        "read_words": MEM_BYTES // 4,
    }
    run = cocotb_runner.run(build_tile(simulator), TEST_MODULE, testcase="run_images", payload=batch)
    records = {record["name"]: record for record in run.output}

    for name, image in images.items():
        record = records[name]
        model = model_run(image)
        assert (record["state"], record["cause"], record["pc"]) == (TileState.TRAPPED, Cause.ECALL, model.pc), name
        assert record["cycles"] >= model.instret, name
        assert record["retired"] == model.instret, f"{name}: {record['retired']} retired, model ran {model.instret}"

    crc = images["crc32"]
    memory = memory_bytes(records["crc32"]["memory"])
    message = crc.initial_bytes("crc_message").rstrip(b"\0")
    assert symbol_bytes(memory, crc, "crc_result") == struct.pack("<I", zlib.crc32(message))

    sort = images["sort"]
    memory = memory_bytes(records["sort"]["memory"])
    count = sort.symbols["sort_data"].size // 4
    data = struct.unpack(f"<{count}i", symbol_bytes(memory, sort, "sort_data"))
    assert list(data) == sorted(struct.unpack(f"<{count}i", sort.initial_bytes("sort_data")))

    bench = images["bench"]
    memory = memory_bytes(records["bench"]["memory"])
    for name in ("bench_result", "mix_table", "sieve_composite"):
        assert symbol_bytes(memory, bench, name) == symbol_bytes(bytes(model_run(bench).mem), bench, name), name


@pytest.mark.slow
@pytest.mark.parametrize(
    ("simulator", "first_seed", "count"),
    [(simulator, first, count) for simulator, chunks in RANDOM_CHUNKS.items() for first, count in chunks],
)
def test_random_programs_match_model(simulator: cocotb_runner.Simulator, first_seed: int, count: int) -> None:
    batch = {
        "mem_bytes": MEM_BYTES,
        "tile_id": TILE_ID,
        "first_seed": first_seed,
        "count": count,
        "body_items": RANDOM_BODY_ITEMS,
        "max_cycles": RANDOM_MAX_CYCLES,
    }
    result = cocotb_runner.run(build_tile(simulator), TEST_MODULE, testcase="random_cosim", payload=batch)
    assert result.output == {"checked": count, "mismatches": []}


def test_random_cosimulation_reports_a_differing_tile() -> None:
    """The comparison can fail: programs generated for another tile id read a different mhartid than the tile's."""
    batch = {
        "mem_bytes": MEM_BYTES,
        "tile_id": TILE_ID ^ 1,
        "first_seed": 0,
        "count": 40,
        "body_items": RANDOM_BODY_ITEMS,
        "max_cycles": RANDOM_MAX_CYCLES,
    }
    difference = r"random programs differ from the model:\s+seed \d+: (x|memory)\[\d+\] = 0x[0-9a-f]+, model 0x"
    with pytest.raises(cocotb_runner.CocotbFailure, match=difference):
        cocotb_runner.run(build_tile("verilator"), TEST_MODULE, testcase="random_cosim", payload=batch)

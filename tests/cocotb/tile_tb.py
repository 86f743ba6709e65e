"""cocotb tests for a Verilog `Tile` (hw/tile.py), run by tests/test_core_cocotb.py and tessera.sim.bench_core.

Both tests take a batch through the runner's JSON payload and run all of it in one simulator launch:

- `run_images`: payload {"images": [{"name", "words", "max_cycles"}], "read_words": N}.
  Each image is loaded at address 0 through the debug port after a reset_pc, run to its stop, and the first N
  words of memory are read back through the debug port. Output: one record per image (state, cause, pc, cycles,
  retired, memory); the caller checks the results (against Python computations).
- `random_cosim`: payload {"mem_bytes", "tile_id", "first_seed", "count", "body_items", "max_cycles"}.
  Generates random programs (tessera.sim.randprog), runs each on the golden model and on the tile, and compares
  state, cause, pc, every memory word and x1..x31 (through the program's register dump, with randprog's second
  phase after a fault). Images are set in memory and the whole memory is compared as the simulator holds it (VPI:
  `TileDriver.set_memory`, `memory_words`), since through the debug port loading a program's ~300 changed words
  and reading back all 512 cost ~25 000 cycles. The port still writes the second phase's entry word and reads back
  the register dump after every program. Output: counts; the test fails listing the first mismatching seeds.
"""

from __future__ import annotations

from dataclasses import dataclass

import cocotb
from tile_driver import TileDriver

from tessera.firmware.isa import Cause, TileState
from tessera.sim import randprog
from tessera.sim.cocotb_runner import load_payload, save_output

#: Stop comparing after this many mismatching programs: later ones rarely add information.
MAX_REPORTED_MISMATCHES = 5


@cocotb.test()
async def run_images(dut) -> None:
    batch = load_payload()
    tile = TileDriver(dut)
    await tile.start()
    records = []
    for image in batch["images"]:
        await tile.stop_and_rewind()
        await tile.write_words(image["words"])
        stop = await tile.run_until_stopped(image["max_cycles"])
        memory = await tile.read_words(0, batch["read_words"])
        records.append(
            {
                "name": image["name"],
                "state": int(stop.state),
                "cause": stop.cause,
                "pc": stop.pc,
                "cycles": stop.cycles,
                "retired": stop.retired,
                "memory": memory,
            }
        )
    save_output(records)


@dataclass
class _Mismatch:
    seed: int
    what: str

    def __str__(self) -> str:
        return f"seed {self.seed}: {self.what}"


def _first_difference(name: str, actual: list[int], expected: list[int]) -> str | None:
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        if got != want:
            return f"{name}[{index}] = {got:#010x}, model {want:#010x}"
    return None


async def _cosimulate(tile: TileDriver, program: randprog.RandomProgram, max_cycles: int) -> str | None:
    """Run one program on the tile; return a description of the first difference from the model, or None.

    The image is set in memory directly; every memory word is compared as the simulator holds it (a stray store
    anywhere shows), and x1..x31 as the register dump left them, read back through the debug port (so the port is
    used after every kind of stop)."""
    expected = randprog.run_on_model(program)
    await tile.stop_and_rewind()
    tile.set_memory(program.words)  # the model starts from zeroed memory: so does the image
    stop = await tile.run_until_stopped(max_cycles)
    seen = (stop.state, stop.cause, stop.pc)
    if seen != (expected.state, expected.cause, expected.pc):
        return (
            f"stopped in {stop.state.name} cause {stop.cause} pc {stop.pc:#x} after {stop.cycles} cycles;"
            f" model {TileState(expected.state).name} cause {expected.cause} pc {expected.pc:#x}"
        )
    problem = _first_difference("memory", tile.memory_words(), expected.memory)
    if problem:
        return problem
    if expected.registers is None:
        return None
    dumped = expected.cause in (Cause.ECALL, Cause.BREAKPOINT) and expected.pc == program.dump_entry + 4 * 32
    if not dumped:
        # randprog's second phase: jump straight to the register dump from a reset pc.
        await tile.stop_and_rewind()
        await tile.write_words([program.second_phase_entry_word()])
        stop = await tile.run_until_stopped(max_cycles)
        ended_in_dump = stop.state == TileState.TRAPPED and stop.cause in (Cause.ECALL, Cause.BREAKPOINT)
        if not ended_in_dump or stop.pc != program.dump_entry + 4 * 32:
            return f"register dump phase stopped in {stop.state.name} cause {stop.cause} pc {stop.pc:#x}"
    registers = await tile.read_words(program.dump_address // 4, randprog.DUMP_WORDS)
    return _first_difference("x", [0, *registers], [0, *expected.registers])


@cocotb.test()
async def random_cosim(dut) -> None:
    batch = load_payload()
    tile = TileDriver(dut)
    await tile.start()
    mismatches: list[_Mismatch] = []
    checked = 0
    for seed in range(batch["first_seed"], batch["first_seed"] + batch["count"]):
        program = randprog.generate(
            seed, mem_bytes=batch["mem_bytes"], body_items=batch["body_items"], fault="random", tile_id=batch["tile_id"]
        )
        problem = await _cosimulate(tile, program, batch["max_cycles"])
        checked += 1
        if problem:
            mismatches.append(_Mismatch(seed, problem))
            if len(mismatches) >= MAX_REPORTED_MISMATCHES:
                break
    save_output({"checked": checked, "mismatches": [str(m) for m in mismatches]})
    assert not mismatches, f"{len(mismatches)} of {checked} random programs differ from the model:\n" + "\n".join(
        map(str, mismatches)
    )

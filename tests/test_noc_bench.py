"""The network benchmark's devices under test: TileRingBench (tiles running the traffic program) in the Amaranth
simulator, and the free-running C++ harness (sim/noc_bench_main.cpp) on a small TrafficBench under Verilator."""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from tessera.hw.noc_bench import TrafficBench
from tessera.hw.noc_tile_bench import TileRingBench
from tessera.sim.bench_noc import build_bench, run_bench


def test_tile_bench_refuses_a_tile_count_that_is_not_a_power_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        TileRingBench(num_tiles=3)


def test_tiles_load_their_program_and_exchange_messages() -> None:
    bench = TileRingBench(num_tiles=2)
    counts: dict[str, int] = {}

    async def testbench(ctx) -> None:
        ctx.set(bench.enable, 1)
        await ctx.tick().repeat(4000)  # the load takes ~34 cycles per program word (serial debug ports)
        counts.update(cycles=ctx.get(bench.cycles), sent=ctx.get(bench.sent), received=ctx.get(bench.received))

    simulator = Simulator(bench)
    simulator.add_clock(1e-6)
    simulator.add_testbench(testbench)
    simulator.run()
    assert counts["cycles"] == 4000
    # Every tile sends one message per lap or so and drains its mailbox: all but the few in flight have arrived.
    assert counts["sent"] > 40, counts
    assert counts["sent"] - 2 * 8 <= counts["received"] <= counts["sent"], counts


@pytest.mark.slow
def test_free_running_harness_drains_a_small_traffic_bench() -> None:
    bench = TrafficBench(num_tiles=2, quota=400, seed=5, hoarders=(1,))
    build = build_bench(bench, "traffic_2", checks=True)
    result = run_bench(build, "--drain", "--cycles", "2000000")
    assert result["drained"], result
    assert result["sent"] == result["received"] == 3 * 400, result
    assert (result["duplicates"], result["gaps"], result["corrupt"]) == (0, 0, 0), result
    assert result["cycles_per_cpu_s"] > 0, result

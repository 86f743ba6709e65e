"""The long random stress run: 10^5 messages on 8 tiles + host, under Verilator (cocotb), HDL traffic generators.

TrafficNodes (hw/noc_traffic.py) play the tiles at full simulator speed; one node hoards (stops receiving for
thousands of cycles, so its mailbox stays full and its senders are NACKed). Checked: every message received exactly
once and in per-pair order (sequence numbers), payload intact, and the traffic drains within a bound.
"""

import pytest

from tessera.hw.noc_bench import TrafficBench
from tessera.sim import cocotb_runner

NUM_TILES = 8
MESSAGES = 100_000
QUOTA = -(-MESSAGES // (NUM_TILES + 1))
DRAIN_BOUND_CYCLES = 200_000  # after the last node finished sending


@pytest.mark.slow
def test_hundred_thousand_messages_on_eight_tiles() -> None:
    bench = TrafficBench(num_tiles=NUM_TILES, quota=QUOTA, seed=2024, hoarders=(3,))
    design = cocotb_runner.build(bench, "noc_stress_8", "verilator")
    run = cocotb_runner.run(design, "noc_stress_tb", payload={"poll_cycles": 20_000, "max_cycles": 40_000_000})
    out = run.output
    assert out["sent"] == QUOTA * (NUM_TILES + 1) >= MESSAGES
    assert out["received"] == out["sent"], f"lost {out['sent'] - out['received']} messages"
    assert (out["duplicates"], out["gaps"], out["corrupt"]) == (0, 0, 0), out
    assert out["cycles"] - out["sending_done_at"] <= DRAIN_BOUND_CYCLES, out

"""UartTx / UartRx against the line model in tessera.sim.uart_model."""

from __future__ import annotations

import gc
import random
import warnings

import pytest
from amaranth.sim import Simulator

from tessera.hw.uart_rx import UartRx
from tessera.hw.uart_tx import UartTx
from tessera.sim.uart_model import RxEvent, frame_bits, line_levels, receive, tolerance


def _run(dut, *testbenches, deadline_cycles: int) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    for tb in testbenches:
        sim.add_testbench(tb)
    sim.run_until(deadline_cycles * 1e-6)


@pytest.mark.parametrize("divisor", [4, 5, 9])
def test_tx_waveform_is_exact(divisor: int) -> None:
    """Back-to-back bytes: every bit lasts exactly `divisor` cycles, start/data/stop in order, no gap."""
    rng = random.Random(divisor)
    data = [rng.randrange(256) for _ in range(12)] + [0x00, 0xFF, 0x55]
    dut = UartTx(divisor)
    levels: list[int] = []
    done = False

    async def feed(ctx):
        for byte in data:
            ctx.set(dut.i.payload, byte)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def watch(ctx):
        nonlocal done
        for _ in range(divisor * 10 * (len(data) + 2)):
            levels.append(ctx.get(dut.tx))
            await ctx.tick()
        done = True

    _run(dut, feed, watch, deadline_cycles=divisor * 10 * (len(data) + 3))
    assert done
    start = levels.index(0)
    assert all(levels[:start])
    expected = [bit for byte in data for bit in frame_bits(byte) for _ in range(divisor)]
    got = levels[start : start + len(expected)]
    assert got == expected
    assert all(levels[start + len(expected) :]), "line must return to idle"


def _drive_rx(divisor: int, levels: list[int], ready_pattern=None) -> tuple[list[RxEvent], int]:
    """Play levels into UartRx; collect delivered bytes and framing errors in order; count overruns."""
    dut = UartRx(divisor)
    events: list[RxEvent] = []
    overruns = 0

    async def play(ctx):
        for level in levels:
            ctx.set(dut.rx, level)
            await ctx.tick()

    async def collect(ctx):
        nonlocal overruns
        cycle = 0
        while True:
            ready = 1 if ready_pattern is None else ready_pattern(cycle)
            ctx.set(dut.o.ready, ready)
            if ctx.get(dut.o.valid) and ready:
                events.append(RxEvent(ctx.get(dut.o.payload)))
            if ctx.get(dut.framing_error):
                events.append(RxEvent(None))
            overruns += ctx.get(dut.overrun)
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(play)
    sim.add_testbench(collect, background=True)
    sim.run_until((len(levels) + 4) * 1e-6)
    return events, overruns


@pytest.mark.parametrize("divisor", [4, 8, 13])
def test_rx_random_bytes_within_tolerance(divisor: int) -> None:
    """Random bytes, random idle gaps, sender periods spread over the tolerance window: all received exactly,
    and the model agrees cycle-accurately on what is received."""
    rng = random.Random(divisor)
    fastest, slowest = tolerance(divisor)
    for ratio in (fastest + 0.004, 1.0, slowest - 0.004):
        data = [rng.randrange(256) for _ in range(24)]
        gaps = [rng.choice([0, 0, 1, 3, divisor]) for _ in data]
        levels = line_levels([(b, 1) for b in data], divisor * ratio, idle_before=5, gaps=gaps)
        events, overruns = _drive_rx(divisor, levels)
        assert events == [RxEvent(b) for b in data], f"ratio {ratio:.3f}"
        assert events == receive(levels, divisor)
        assert overruns == 0


def test_rx_outside_tolerance_corrupts() -> None:
    """The tolerance bound is real: a sender 8 % slow breaks the data (so the window test can fail)."""
    divisor = 8
    data = [0x0F, 0xF0, 0x55, 0x01]
    levels = line_levels([(b, 1) for b in data], divisor * 1.08, idle_before=3)
    events, _ = _drive_rx(divisor, levels)
    assert events == receive(levels, divisor)
    assert events != [RxEvent(b) for b in data]


def test_rx_framing_error_break_and_glitch() -> None:
    """A bad stop bit drops the byte and reports it once (even when the line then stays low: a break); a low
    glitch shorter than half a bit is not a start bit; the receiver is fine afterwards."""
    divisor = 8
    levels = line_levels([(0xA5, 1), (0x3C, 0)], divisor, idle_before=4, gaps=[2, 0])
    levels = levels[:-2]  # line_levels ends with two idle cycles: cut them so the break follows the bad stop bit
    levels += [0] * (divisor * 30)  # break: line held low
    levels += [1] * 20 + [0, 0] + [1] * 20  # glitch of 2 cycles
    levels += line_levels([(0x7E, 1), (0xC0, 1)], divisor, gaps=[0, 0])
    events, overruns = _drive_rx(divisor, levels)
    assert events == [RxEvent(0xA5), RxEvent(None), RxEvent(0x7E), RxEvent(0xC0)]
    assert events == receive(levels, divisor)
    assert overruns == 0


def test_rx_overrun_keeps_first_byte() -> None:
    """A byte completing while the previous one is not taken is dropped and reported; the shown byte stays."""
    divisor = 5
    levels = line_levels([(0x11, 1), (0x22, 1), (0x33, 1)], divisor, idle_before=2, gaps=[0, 0, 0])
    second_done = 2 + 2 + 2 * 10 * divisor + 2
    events, overruns = _drive_rx(divisor, levels + [1] * 40, ready_pattern=lambda c: c > second_done)
    assert overruns == 1
    assert events == [RxEvent(0x11), RxEvent(0x33)]


def test_rx_overrun_window_ends_at_first_data_bit() -> None:
    """The shown byte must be taken before the next byte's first data bit is sampled: taken just before, the next
    byte arrives; taken just after, the next byte is dropped as an overrun (its stop bit is far later)."""
    divisor = 6
    levels = line_levels([(0x11, 1), (0x22, 1)], divisor, idle_before=2, gaps=[0, 0])
    # Cycle at which the second byte's first data bit is sampled: its start edge, two synchroniser cycles, half a bit
    # to the start bit's middle, one bit more.
    second_start = 2 + 10 * divisor
    first_sample = second_start + 2 + divisor // 2 + divisor
    for taken, expected, overrun_count in (
        (first_sample - 3, [RxEvent(0x11), RxEvent(0x22)], 0),
        (first_sample + 3, [RxEvent(0x11)], 1),
    ):
        events, overruns = _drive_rx(divisor, levels + [1] * 20, ready_pattern=lambda c, t=taken: c >= t)
        assert (events, overruns) == (expected, overrun_count), f"taken at cycle {taken}"


@pytest.mark.parametrize("divisor", [4, 7])
def test_loopback_tx_to_rx(divisor: int) -> None:
    """UartTx into UartRx at the same divisor (3 Mbaud at 12 MHz is divisor 4): every byte arrives in order."""
    from amaranth import Module

    rng = random.Random(99)
    data = [rng.randrange(256) for _ in range(40)]
    m = Module()
    m.submodules.tx = tx = UartTx(divisor)
    m.submodules.rx = rx = UartRx(divisor)
    m.d.comb += rx.rx.eq(tx.tx)
    received: list[int] = []

    async def feed(ctx):
        for byte in data:
            ctx.set(tx.i.payload, byte)
            ctx.set(tx.i.valid, 1)
            await ctx.tick().until(tx.i.ready)
        ctx.set(tx.i.valid, 0)

    async def collect(ctx):
        ctx.set(rx.o.ready, 1)
        while True:
            await ctx.tick()
            if ctx.get(rx.o.valid):
                received.append(ctx.get(rx.o.payload))
            assert not ctx.get(rx.framing_error)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(collect, background=True)
    sim.run_until((len(data) + 3) * 10 * divisor * 1e-6)
    assert received == data


def test_divisor_checked() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the half-built components are never elaborated, by design
        with pytest.raises(ValueError, match="divisor 3"):
            UartRx(3)
        with pytest.raises(ValueError, match="divisor 1"):
            UartTx(1)
        gc.collect()

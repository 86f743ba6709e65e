"""Reference model of the 8N1 line: what a transmitter puts on the wire, and what `UartRx` makes of it.

Levels are lists of 0/1, one entry per clock cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Clock cycles the receiver's input synchroniser delays the line.
SYNC_STAGES = 2


def frame_bits(byte: int, stop_bit: int = 1) -> list[int]:
    """Start bit, 8 data bits LSB first, stop bit."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop_bit]


def line_levels(
    symbols: list[tuple[int, int]], cycles_per_bit: float, idle_before: int = 0, gaps: list[int] | None = None
) -> list[int]:
    """Per-cycle levels for `(byte, stop_bit)` symbols sent at a possibly fractional bit period (to model a
    sender whose baud rate differs from the receiver's), with `gaps[i]` idle cycles after symbol i."""
    bits: list[tuple[float, int]] = []  # (start time, level) of each bit
    t = float(idle_before)
    for index, (byte, stop) in enumerate(symbols):
        for level in frame_bits(byte, stop):
            bits.append((t, level))
            t += cycles_per_bit
        if gaps:
            bits.append((t, 1))
            t += gaps[index]
    levels = [1] * (int(t) + 2)
    for start, level in bits:
        for cycle in range(int(round(start)), len(levels)):
            levels[cycle] = level
    return levels


@dataclass(frozen=True)
class RxEvent:
    """A byte the receiver delivered, or a framing error (byte is None)."""

    byte: int | None


def receive(levels: list[int], divisor: int) -> list[RxEvent]:
    """What UartRx reports for these pin levels: falling edge at cycle t (after synchronisation) -> start bit
    checked at t + divisor//2 (high there: a glitch, ignored), bit k sampled at t + divisor//2 + (k+1)*divisor,
    stop bit at + 9*divisor; after a bad stop bit it waits for the line to be high again."""
    line = [1] * SYNC_STAGES + levels
    events: list[RxEvent] = []
    t = 0
    while t < len(line):
        if line[t]:
            t += 1
            continue
        mid = t + divisor // 2
        if mid + 9 * divisor >= len(line):
            break
        if line[mid]:
            t = mid + 1
            continue
        byte = sum(line[mid + (k + 1) * divisor] << k for k in range(8))
        stop_at = mid + 9 * divisor
        if line[stop_at]:
            events.append(RxEvent(byte))
            t = stop_at + 1
        else:
            events.append(RxEvent(None))
            t = stop_at + 1
            while t < len(line) and not line[t]:
                t += 1
            t += 1
    return events


def tolerance(divisor: int) -> tuple[float, float]:
    """Range of sender bit periods, relative to `divisor`, that the receiver decodes correctly (ignoring
    metastability): the edge is seen up to one clock late and the stop bit is sampled floor(divisor/2) + 9*divisor
    cycles after the seen edge; that sample must fall inside the sender's stop bit [9, 10) periods after its edge."""
    half = divisor // 2
    fastest = (half + 1 + 9 * divisor) / (10 * divisor)
    slowest = (half + 9 * divisor) / (9 * divisor)
    return fastest, slowest

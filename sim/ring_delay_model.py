"""Reference model of hw/ring_delay.py's RingDelay, cycle by cycle: a row of `cycles` flit registers."""

from __future__ import annotations

from collections import deque

#: The flit a ring register holds after a reset: data 0, slot kind EMPTY (0).
RESET_FLIT = 0


class RingDelayModel:
    """Flits as integers (`Flit`'s 18 bits: data in bits 15..0, slot kind in bits 17..16)."""

    def __init__(self, cycles: int) -> None:
        if cycles < 1:
            raise ValueError(f"a ring delay of {cycles} cycles: at least 1 is needed")
        self._cycles = cycles
        self._registers: deque[int] = deque()
        self.reset()

    def reset(self) -> None:
        """Every register back to the reset flit."""
        self._registers = deque([RESET_FLIT] * self._cycles, maxlen=self._cycles)

    @property
    def output(self) -> int:
        """What the last register shows during this cycle."""
        return self._registers[0]

    def tick(self, flit: int) -> None:
        """A clock edge with `flit` at the input: every register takes its predecessor's value."""
        self._registers.append(flit)

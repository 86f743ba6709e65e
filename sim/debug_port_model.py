"""Reference model of the serial debug port (hw/debug_port.py), and the cycle sequences that drive it.

Protocol, cycle by cycle at the target (a stopped tile):
- `data_out` is bit 0 of the word register W in every cycle.
- `shift`: W <- data_in << 31 | W >> 1; the address register A (the word address, `addr_bits` wide; a target may
  keep more bits below it, which are never used as the address) <- addr_in << (addr_bits - 1) | A >> 1.
- `re`: memory word A is read; W takes it at the end of the NEXT cycle (in which nothing else may be asked).
- `we`: memory word A <- W.
At most one of shift, re and we is asked in a cycle. So a write is 32 shifts (W's bits, least significant first,
with A's bits in the last `addr_bits` of them, least significant first), then `we` (33 cycles); a read is
`addr_bits` shifts that set A (W's bits do not matter), `re`, an idle cycle, then 32 shifts that bring W out on
`data_out` (34 + addr_bits cycles).
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.hw.debug_port import WORD_BITS

__all__ = ["DebugCycle", "DebugTargetModel", "drive", "read_cycles", "word_from_bits", "write_cycles"]


@dataclass(frozen=True)
class DebugCycle:
    """What the initiator drives in one cycle; `sample`: `data_out` carries the next bit of a read word."""

    shift: bool = False
    data_in: int = 0
    addr_in: int = 0
    re: bool = False
    we: bool = False
    sample: bool = False


def _shifts(word: int, word_addr: int, addr_bits: int, count: int, *, sample: bool = False) -> list[DebugCycle]:
    """`count` shifts carrying `word` and, in the last `addr_bits`, `word_addr` (both least significant bit first)."""
    if not 0 <= word_addr < 1 << addr_bits:
        raise ValueError(f"word address {word_addr:#x} does not fit {addr_bits} bits")
    offset = count - addr_bits
    return [
        DebugCycle(
            shift=True,
            data_in=word >> k & 1,
            addr_in=word_addr >> (k - offset) & 1 if k >= offset else 0,
            sample=sample,
        )
        for k in range(count)
    ]


def write_cycles(word_addr: int, word: int, addr_bits: int) -> list[DebugCycle]:
    """The cycles that write `word` to memory word `word_addr`."""
    if not 0 <= word < 1 << WORD_BITS:
        raise ValueError(f"word {word:#x} does not fit {WORD_BITS} bits")
    return [*_shifts(word, word_addr, addr_bits, WORD_BITS), DebugCycle(we=True)]


def read_cycles(word_addr: int, addr_bits: int) -> list[DebugCycle]:
    """The cycles that read memory word `word_addr`; the `sample` ones carry its bits, least significant first."""
    return [
        *_shifts(0, word_addr, addr_bits, addr_bits),
        DebugCycle(re=True),
        DebugCycle(),
        *_shifts(0, 0, addr_bits, WORD_BITS, sample=True),
    ]


def word_from_bits(bits: list[int]) -> int:
    """The word whose bits, least significant first, are `bits` (what the `sample` cycles saw)."""
    if len(bits) != WORD_BITS:
        raise ValueError(f"{len(bits)} bits sampled, a word has {WORD_BITS}")
    return sum((bit & 1) << k for k, bit in enumerate(bits))


class DebugTargetModel:
    """A stopped tile's side of the port, over `memory` (a list of words, `2**addr_bits` long)."""

    def __init__(self, memory: list[int], addr_bits: int) -> None:
        if len(memory) != 1 << addr_bits:
            raise ValueError(f"memory of {len(memory)} words for {addr_bits} address bits")
        self.memory = memory
        self.addr_bits = addr_bits
        self.word = 0
        self.address = 0
        self._loading: int | None = None

    @property
    def data_out(self) -> int:
        return self.word & 1

    def step(self, cycle: DebugCycle) -> None:
        """One clock edge with the port driven as `cycle`."""
        if sum((cycle.shift, cycle.re, cycle.we)) > 1:
            raise ValueError(f"{cycle}: at most one of shift, re, we per cycle")
        loaded, self._loading = self._loading, None
        if loaded is not None:
            if cycle.shift or cycle.re or cycle.we:
                raise ValueError(f"{cycle}: the cycle after re must be idle")
            self.word = loaded
        elif cycle.shift:
            self.word = (cycle.data_in & 1) << (WORD_BITS - 1) | self.word >> 1
            self.address = (cycle.addr_in & 1) << (self.addr_bits - 1) | self.address >> 1
        elif cycle.re:
            self._loading = self.memory[self.address]
        elif cycle.we:
            self.memory[self.address] = self.word


async def drive(ctx, port, cycles: list[DebugCycle]) -> list[int]:
    """Drive `port` (a tile's `debug`, seen from the host side) through `cycles` in an Amaranth testbench, one
    clock each; return the `data_out` bits of the `sample` cycles. The port is left idle."""
    sampled = []
    for cycle in cycles:
        ctx.set(port.shift, cycle.shift)
        ctx.set(port.data_in, cycle.data_in)
        ctx.set(port.addr_in, cycle.addr_in)
        ctx.set(port.re, cycle.re)
        ctx.set(port.we, cycle.we)
        if cycle.sample:
            sampled.append(ctx.get(port.data_out))
        await ctx.tick()
    for name in ("shift", "data_in", "addr_in", "re", "we"):
        ctx.set(getattr(port, name), 0)
    return sampled

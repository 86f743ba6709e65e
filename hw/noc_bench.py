"""A whole ring network driven by TrafficNodes: the device under test of the long stress runs and benchmarks."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.hw.network import RingNetwork
from tessera.hw.noc_traffic import TrafficNode


class TrafficBench(wiring.Component):
    """RingNetwork(num_tiles) with one TrafficNode per node, every node allowed to send everywhere.

    Node indices listed in `hoarders` stop receiving for long stretches. Outputs are totals over all nodes;
    `busy` = some node still has a message in flight (or staged). `cycles` counts clock cycles since `enable`.
    """

    def __init__(
        self, *, num_tiles: int, quota: int, seed: int, hoarders: tuple[int, ...] = (), retry_delay: int = 32
    ) -> None:
        self._num_tiles = num_tiles
        self._quota = quota
        self._seed = seed
        self._hoarders = hoarders
        self._retry_delay = retry_delay
        super().__init__(
            {
                "enable": In(1),
                "sent": Out(32),
                "received": Out(32),
                "duplicates": Out(32),
                "gaps": Out(32),
                "corrupt": Out(32),
                "done_sending": Out(1),
                "cycles": Out(32),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.network = network = RingNetwork(num_tiles=self._num_tiles, retry_delay=self._retry_delay)
        nodes = self._num_tiles + 1
        generators = []
        for index in range(nodes):
            seed = (self._seed * 0x9E3779B1 + index * 0x85EBCA6B) & 0xFFFF_FFFF or 1
            generator = TrafficNode(
                index=index, num_tiles=self._num_tiles, quota=self._quota, seed=seed, hoarder=index in self._hoarders
            )
            m.submodules[f"traffic{index}"] = generator
            wiring.connect(m, generator.core, network.cores[index])
            m.d.comb += [
                generator.enable.eq(self.enable),
                network.permissions[index].we.eq(1),
                network.permissions[index].data.eq(-1),
            ]
            generators.append(generator)
        for total in ("sent", "received", "duplicates", "gaps", "corrupt"):
            m.d.comb += getattr(self, total).eq(sum(getattr(g, total) for g in generators))
        m.d.comb += self.done_sending.eq(sum(g.done_sending for g in generators) == nodes)
        with m.If(self.enable):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        return m

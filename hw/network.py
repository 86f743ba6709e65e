"""The whole on-chip network: one message unit per tile and one for the host, joined in a slotted ring."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from tessera.hw.message_unit import MessagePortSignature, MessageUnit, permission_signature
from tessera.hw.noc_layouts import HOST_NODE, SLOT_FLITS, ring_length
from tessera.hw.ring_delay import pad_ring


def node_address(index: int, num_tiles: int) -> int:
    """Address of ring node `index`: tiles 0..num_tiles-1 first, then the host."""
    return HOST_NODE if index == num_tiles else index


def phase_at_reset(position: int) -> int:
    """Slot phase of the flit that the stop at ring `position` sees first.

    Register j (the output of stop j) starts as flit (-j) mod SLOT_FLITS of some slot: the flit ahead of a flit is
    one register further along the ring. Stop k reads register k-1. This tiles the ring with whole slots because
    the ring length is a multiple of SLOT_FLITS.
    """
    return (1 - position) % SLOT_FLITS


def connect_ring(m: Module, stops: list) -> None:
    """Join `stops` (anything with `ring_in`/`ring_out` Flit ports) into one ring in list order, padded after the
    last stop to a whole number of slots (`ring_length`) by `pad_ring`: one cycle per pad, runs of pads in block RAM."""
    outputs = [stop.ring_out for stop in stops]
    outputs.append(pad_ring(m, outputs[-1], ring_length(len(stops)) - len(stops)))  # what stop 0 reads
    for index, stop in enumerate(stops):
        m.d.comb += stop.ring_in.eq(outputs[index - 1])


class RingNetwork(wiring.Component):
    """`num_tiles` tile nodes and the host node in one ring, padded to whole slots (`connect_ring`).

    `cores[i]` is node i's message port (node num_tiles is the host), `permissions[i]` its permission write port.
    `depth`, `retry_delay` and `separate_staging` are every node's (`MessageUnit`).
    The chip top builds the same ring out of Tiles; this component is the network on its own, for tests and
    benchmarks, and the reference for how the chip must wire it.
    """

    def __init__(
        self, *, num_tiles: int, depth: int = 8, retry_delay: int = 32, separate_staging: bool = True
    ) -> None:
        self._num_tiles = num_tiles
        nodes = num_tiles + 1
        super().__init__(
            {
                "cores": In(MessagePortSignature).array(nodes),
                "permissions": In(permission_signature(num_tiles)).array(nodes),
            }
        )
        #: The nodes in ring order (public so that tests can watch them).
        self.units = [
            MessageUnit(
                address=node_address(index, num_tiles),
                num_tiles=num_tiles,
                phase_at_reset=phase_at_reset(index),
                depth=depth,
                retry_delay=retry_delay,
                separate_staging=separate_staging,
            )
            for index in range(nodes)
        ]

    @property
    def num_nodes(self) -> int:
        return self._num_tiles + 1

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for index, unit in enumerate(self.units):
            m.submodules[f"node{index}"] = unit
            wiring.connect(m, wiring.flipped(self.cores[index]), unit.core)
            wiring.connect(m, wiring.flipped(self.permissions[index]), unit.permissions)
        connect_ring(m, self.units)
        return m

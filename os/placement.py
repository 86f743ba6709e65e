"""Which tile each service runs on.

Pinned services (`tile = N` in the manifest) keep their tile. The others are placed one by one in start order,
each on the free tile that minimises the ring hops of the messages it exchanges with services already placed (its
`sends` both ways, and sends to the host); ties go to the lowest tile. The network is a one-way ring through tiles
0..T-1 and then the host (docs/network.md), so a message from ring position a to b travels (b - a) mod (T + 1) hops.
"""

from __future__ import annotations

from collections.abc import Mapping

from tessera.os.manifest import HOST_NAME, Manifest


def ring_hops(source: int, destination: int, tiles: int) -> int:
    """Hops from ring position `source` to `destination` on a ring of `tiles` tiles plus the host (position tiles)."""
    return (destination - source) % (tiles + 1)


def place(manifest: Manifest) -> dict[str, int]:
    """Service name -> tile, for every service, in manifest order."""
    tiles = manifest.chip.tiles
    placed: dict[str, int] = {s.name: s.tile for s in manifest.services.values() if s.tile is not None}
    free = sorted(set(range(tiles)) - set(placed.values()))
    for name in manifest.start_order():
        if name in placed:
            continue
        if not free:  # the manifest check already refuses more services than tiles
            raise manifest.error(("services", name), f"no free tile left for service {name!r}")
        best = min(free, key=lambda tile: (_cost(manifest, name, tile, placed), tile))
        placed[name] = best
        free.remove(best)
    return {name: placed[name] for name in manifest.services}


def _cost(manifest: Manifest, name: str, tile: int, placed: Mapping[str, int]) -> int:
    """Ring hops of the traffic between service `name` on `tile` and everything already placed."""
    tiles = manifest.chip.tiles
    cost = 0
    for destination in manifest.services[name].sends:
        if destination == HOST_NAME:
            cost += ring_hops(tile, tiles, tiles)
        elif destination in placed:
            cost += ring_hops(tile, placed[destination], tiles)
    for other, other_tile in placed.items():
        if name in manifest.services[other].sends:
            cost += ring_hops(other_tile, tile, tiles)
    return cost


"""`make lone-ffs BOARD=icebreaker`: the flip-flops of the last board build that fill a logic cell on their own.

An iCE40 logic cell holds one LUT4 and one flip-flop, and the flip-flop's D input is that LUT's output: nextpnr packs
a flip-flop with the LUT that drives it only when the LUT drives nothing else. Every other flip-flop (a shift
register stage, a register loaded straight from a bus, a block RAM or an input, one behind a LUT that also feeds other
logic) takes a logic cell alone: nextpnr's "LCs used as DFF only" (690 of the 4-tile iCEBreaker chip's 4999 cells).
`make area` cannot show them (its counts are per module, before packing). This report reads the synthesised,
flattened netlist of the last `make build` (build/boards/<board>/tessera.json) and lists the lone flip-flops by
the signal they hold, tiles folded together (`node3` -> `nodeN`), most first.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from tessera.boards.area import FLIP_FLOP_CELL
from tessera.boards.build import BOARD_BUILD_ROOT, BOARDS, TOP_NAME, project_relative

_TILE_NODE = re.compile(r"(^|\.)node\d+(\.|$)")
#: A name whose last part Amaranth or Yosys made up (`$1`, escaped as `\$1`).
_GENERATED = re.compile(r"(^|\.)\\?\$")
#: The suffixes that make a repeated name unique (`control__pc$150`, `port$8887$0`).
_UNIQUE_SUFFIX = re.compile(r"(\$\d+)+$")


@dataclass(frozen=True)
class SignalFlipFlops:
    """The flip-flops holding one signal (all tiles' copies together): how many, and how many of them are lone."""

    name: str
    lone: int
    total: int


def lone_flip_flops(netlist: Mapping, top: str) -> list[SignalFlipFlops]:
    """The flip-flops of module `top` of a Yosys JSON netlist (after synth_ice40), grouped by the public net their Q
    drives, with tile indices folded; most lone flip-flops first. A flip-flop is lone unless its D input is driven by
    a SB_LUT4 whose output has no other sink."""
    module = netlist.get("modules", {}).get(top)
    if module is None:
        raise ValueError(f"the netlist has no module {top!r}: modules {sorted(netlist.get('modules', {}))}")
    driver: dict[int, str] = {}  # bit -> type of the cell driving it
    sinks: Counter[int] = Counter()
    for cell in module["cells"].values():
        for port, bits in cell["connections"].items():
            output = cell["port_directions"].get(port) == "output"
            for bit in bits:
                if isinstance(bit, int):
                    if output:
                        driver[bit] = cell["type"]
                    else:
                        sinks[bit] += 1
    # bit -> the public net name that carries it in the deepest module (where the register is; the same bit also
    # has the names of the ports it passes on the way up), the shortest among those
    names: dict[int, str] = {}
    for name, net in module["netnames"].items():
        if net.get("hide_name") or _GENERATED.search(name):
            continue
        for bit in net["bits"]:
            if isinstance(bit, int) and (bit not in names or _deeper(name, names[bit])):
                names[bit] = name
    lone: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for cell_name, cell in module["cells"].items():
        if not FLIP_FLOP_CELL.match(cell["type"]):
            continue
        (q,) = cell["connections"]["Q"]
        (d,) = cell["connections"]["D"]
        signal = _TILE_NODE.sub(r"\1nodeN\2", _UNIQUE_SUFFIX.sub("", names.get(q, cell_name)))
        total[signal] += 1
        if driver.get(d) != "SB_LUT4" or sinks[d] != 1:
            lone[signal] += 1
    rows = [SignalFlipFlops(name, lone[name], total[name]) for name in total]
    return sorted(rows, key=lambda row: (-row.lone, row.name))


def _deeper(name: str, than: str) -> bool:
    depth, other = name.count("."), than.count(".")
    return depth > other or (depth == other and len(name) < len(than))


def format_report(rows: list[SignalFlipFlops], limit: int) -> str:
    """The totals, then one line per signal with lone flip-flops (at most `limit` lines)."""
    lone = sum(row.lone for row in rows)
    lines = [f"lone flip-flops: {lone} of {sum(row.total for row in rows)} (each fills a logic cell)",
             f"{'lone':>6} {'of':>6}  signal (tiles folded as nodeN)"]
    shown = [row for row in rows if row.lone][:limit]
    lines += [f"{row.lone:>6} {row.total:>6}  {row.name}" for row in shown]
    rest = sum(row.lone for row in rows[len(shown):])
    if rest:
        lines.append(f"{rest:>6} {'':>6}  (the other signals)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--board", choices=sorted(BOARDS), default="icebreaker")
    parser.add_argument("--limit", type=int, default=40, help="signals listed (default 40)")
    args = parser.parse_args(argv)
    path = BOARD_BUILD_ROOT / args.board / f"{TOP_NAME}.json"
    if not path.exists():
        hint = f"run `make build BOARD={args.board}` first"
        print(f"error: no netlist at {project_relative(path)}: {hint}", file=sys.stderr)
        return 2
    print(f"{project_relative(path)}:")
    print(format_report(lone_flip_flops(json.loads(path.read_text()), TOP_NAME), args.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What the chip-facing subcommands share: the `--target` option, opening the chip with one-line errors, name
resolution, word parsing and the `ps` table. Each command first asks a running `tessera run` session for its
target (tessera.os.session); without one it drives the chip itself over the link, the same on a board and on the
virtual board."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tessera.os.chip import Chip, describe_status
from tessera.os.errors import TesseraError
from tessera.os.image import RuntimeImage, read_image
from tessera.os.link import TARGET_SYNTAX, LinkError, open_link
from tessera.os.manifest import IO_NAMES
from tessera.os.protocol import ChipInfo, Feature, TileStatus

DEFAULT_TARGET = "sim"


def add_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", default=DEFAULT_TARGET, help=f"the chip: {TARGET_SYNTAX} (default: sim)")


def add_image(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", type=Path, help="the running image (for service names when no `tessera run` "
                                                   "session serves the target)")


def add_message(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="service name (or tile number)")
    parser.add_argument("words", nargs="+", help="1..4 message words (decimal, 0x hex, negative allowed)")
    parser.add_argument("--tag", type=lambda text: parse_word(text, "tag", 0xFFFF), default=0,
                        help="message tag 0..65535 (default 0)")


@contextmanager
def chip_on(target: str) -> Iterator[Chip]:
    """The chip at `target`, its link closed afterwards; link problems become one-line TesseraErrors."""
    try:
        link = open_link(target)
    except LinkError as error:
        raise TesseraError(str(error)) from None
    try:
        yield Chip(link)
    except LinkError as error:
        raise TesseraError(str(error)) from None
    finally:
        link.close()


def parse_word(text: str, what: str = "word", limit: int = 0xFFFF_FFFF) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise TesseraError(f"{what} {text!r} is not a number (decimal or 0x hex)") from None
    if limit == 0xFFFF_FFFF and -(1 << 31) <= value < 0:
        value &= 0xFFFF_FFFF
    if not 0 <= value <= limit:
        raise TesseraError(f"{what} {text} does not fit (0..{limit})")
    return value


def parse_words(texts: Sequence[str]) -> list[int]:
    if not 1 <= len(texts) <= 4:
        raise TesseraError(f"a message carries 1..4 words, not {len(texts)}")
    return [parse_word(text) for text in texts]


def load_image(path: Path | None) -> RuntimeImage | None:
    return read_image(path) if path is not None else None


def describe_chip(info: ChipInfo, target: str) -> str:
    """The IDENTIFY reply as `tessera identify` prints it."""
    tiles = (f"{info.tile_count} x {info.mem_bytes} bytes of memory, mailbox depth {info.mailbox_depth}"
             if info.tile_count else "none (the host link and the I/O node only)")
    io = f"node {info.io_node}, services {', '.join(IO_NAMES)}" if info.io_node is not None else "none"
    return "\n".join([
        f"chip at {target}: protocol v{info.protocol_version}, clock {info.clock_hz / 1e6:.3f} MHz",
        f"tiles: {tiles}",
        f"I/O node: {io}",
        f"host: node {info.host_node}; {info.message_words} words per message, {info.max_words} per memory frame",
        f"features: {info.features.describe()}",
    ])


def io_service_node(name: str, chip: Chip) -> int | None:
    """The node address of `name` if it names one of the I/O node's services (IO_NAMES: `led`, `button`), which is
    the node right after the tiles; None for any other name. Raises if the chip has no I/O node."""
    if name not in IO_NAMES:
        return None
    if chip.info.io_node is None:
        raise TesseraError(f"{name!r} is a service of the I/O node, and the chip at {chip.link.target} has none")
    return chip.info.io_node


def resolve(name: str, image: RuntimeImage | None, chip: Chip) -> int:
    """A service name (from the image) or a tile number -> the tile."""
    if image is not None:
        for tile in image.tiles:
            if tile.service == name:
                return tile.tile
    if name.isdigit() and int(name) < chip.info.tile_count:
        return int(name)
    if image is None:
        tiles = chip.info.tile_count
        numbers = f"or a tile number 0..{tiles - 1}" if tiles else "(the chip has no tiles)"
        raise TesseraError(f"unknown service {name!r}: no `tessera run` session serves this target; give --image "
                           f"{numbers}")
    raise TesseraError(f"no service {name!r} in the image (services: {', '.join(t.service for t in image.tiles)})")


def add_service_control(subparsers: argparse._SubParsersAction, name: str, help_text: str,
                        run: Callable[[argparse.Namespace], int]) -> None:
    """A `tessera NAME SERVICE [--target] [--image]` command (stop, restart)."""
    parser = subparsers.add_parser(name, help=help_text)
    parser.add_argument("name", help="service name (or tile number)")
    add_target(parser)
    add_image(parser)
    parser.set_defaults(run=run)


def control_service(args: argparse.Namespace, op: str,
                    on_chip: Callable[[Chip, int, RuntimeImage | None], None]) -> None:
    """Have the session of `args.target` do `op` to `args.name`; without a session, `on_chip(chip, tile, image)`
    does it over the link."""
    from tessera.os import session

    port = session.find_session(args.target)
    if port is not None:
        session.request(port, {"op": op, "name": args.name})
        return
    image = load_image(args.image)
    with chip_on(args.target) as chip:
        on_chip(chip, resolve(args.name, image, chip), image)


def format_ps(rows: Sequence[dict[str, object]]) -> str:
    width = max([len(str(row["service"])) for row in rows] + [7])
    lines = [f"{'tile':>4}  {'service':<{width}}  {'state':<28}  {'restarts':>8}  {'msgs in':>7}  {'msgs out':>8}"]
    for row in rows:
        lines.append(f"{row['tile']:>4}  {row['service']!s:<{width}}  {row['state']!s:<28}  {row['restarts']!s:>8}  "
                     f"{row['in']:>7}  {row['out']:>8}")
    return "\n".join(lines)


def message_columns(chip: Chip, status: TileStatus) -> dict[str, object]:
    """The ps columns "in" / "out": the tile's message counters, or "-" (unavailable, not 0) on a chip whose
    IDENTIFY features have no MESSAGE_COUNTERS (`TesseraChip(counters=False)`)."""
    if chip.info.features & Feature.MESSAGE_COUNTERS:
        return {"in": status.messages_in, "out": status.messages_out}
    return {"in": "-", "out": "-"}


def direct_ps(chip: Chip, image: RuntimeImage | None) -> list[dict[str, object]]:
    """ps without a session: the chip's status of every tile; restarts are only known to a session."""
    services = {tile.tile: tile.service for tile in image.tiles} if image else {}
    rows: list[dict[str, object]] = []
    for number in range(chip.info.tile_count):
        status = chip.status(number)
        rows.append({"tile": number, "service": services.get(number, "-"), "state": describe_status(status),
                     "restarts": "-", **message_columns(chip, status)})
    return rows

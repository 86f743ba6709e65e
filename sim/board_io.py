"""The virtual board's LEDs and buttons, played by the host through the board's control socket.

A chip top built with LEDs/buttons (`TesseraChip(leds=..., buttons=...)`, hw/io_node.py) has the ports `leds` and
`buttons`; the Verilator board (sim/vboard_main.cpp) answers two control commands for them: `io` (reply
`ok leds=L buttons=B cycles=C`) and `buttons MASK` (set the button levels, bit i = button i down). This module
wraps them; docs/virtual-board.md has the user's view.

    state = io_state(endpoints)                 # IoState(leds, buttons, cycles)
    press(endpoints, 0)                         # button 0 down long enough to count, then up as long
    wait_for_leds(endpoints, 0b01)              # until the LEDs show the pattern

`tessera io` (`python -m tessera.sim.board_io`) does the same from a shell, on the board `tessera sim` started.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from tessera.hw.chip import DEFAULT_CLOCK_HZ
from tessera.hw.io_node import default_debounce_cycles, press_hold_cycles
from tessera.sim.virtual_board import RUNNING_ROOT, BoardError, ChipSpec, Endpoints, control, find_running, parse_stats

#: The virtual board's I/O when a test or demo asks for one with LEDs and buttons: the iCEBreaker's.
BOARD_IO = {"leds": 2, "buttons": 1}
#: Cycles a press holds a button on a chip with the default clock and debounce (and stays released after).
DEFAULT_HOLD_CYCLES = press_hold_cycles(default_debounce_cycles(DEFAULT_CLOCK_HZ))
POLL_S = 0.01


def io_chip(tiles: int = 4) -> ChipSpec:
    """The project's chip top with `tiles` tiles and the board I/O (`BOARD_IO`), as the virtual board builds it."""
    return ChipSpec(params={"tiles": tiles, **BOARD_IO})


@dataclass(frozen=True)
class IoState:
    leds: int  # bit i = LED i lit
    buttons: int  # bit i = button i down
    cycles: int  # the board's cycle count when it answered


def io_state(endpoints: Endpoints) -> IoState:
    stats = parse_stats(control(endpoints, "io"))
    return IoState(int(stats["leds"]), int(stats["buttons"]), int(stats["cycles"]))


def set_buttons(endpoints: Endpoints, levels: int) -> int:
    """Set every button's level at once; returns the board's cycle count at that moment."""
    return int(parse_stats(control(endpoints, f"buttons {levels}"))["cycles"])


def wait_cycles(endpoints: Endpoints, since: int, cycles: int, timeout: float = 60.0) -> None:
    """Wait until the board has run `cycles` cycles past its count `since`."""
    deadline = time.monotonic() + timeout
    while io_state(endpoints).cycles < since + cycles:
        if time.monotonic() > deadline:
            raise BoardError(f"the virtual board did not run {cycles} cycles within {timeout:.0f} s")
        time.sleep(POLL_S)


def press(endpoints: Endpoints, button: int, hold_cycles: int = DEFAULT_HOLD_CYCLES) -> None:
    """Press and release `button` (the other buttons keep their levels), each held `hold_cycles` chip cycles so
    that the chip's debouncer counts it (`tessera.hw.io_node.press_hold_cycles`)."""
    levels = io_state(endpoints).buttons
    down = set_buttons(endpoints, levels | 1 << button)
    wait_cycles(endpoints, down, hold_cycles)
    up = set_buttons(endpoints, levels & ~(1 << button))
    wait_cycles(endpoints, up, hold_cycles)


def wait_for_leds(endpoints: Endpoints, expected: int, timeout: float = 60.0) -> IoState:
    """Poll until the LEDs show `expected`; BoardError naming what they show otherwise."""
    deadline = time.monotonic() + timeout
    while (state := io_state(endpoints)).leds != expected:
        if time.monotonic() > deadline:
            raise BoardError(f"the LEDs show {state.leds:#b}, not {expected:#b}, after {timeout:.0f} s")
        time.sleep(POLL_S)
    return state


class VirtualPanel:
    """The virtual board's button and LEDs for a demo (tessera.os.demo_runs.BoardPanel): the host plays them."""

    def __init__(self, endpoints: Endpoints, hold_cycles: int = DEFAULT_HOLD_CYCLES, timeout: float = 60.0) -> None:
        self.endpoints = endpoints
        self.hold_cycles = hold_cycles
        self.timeout = timeout

    def press(self, button: int) -> None:
        press(self.endpoints, button, self.hold_cycles)

    def leds(self, expected: int) -> int:
        try:
            return wait_for_leds(self.endpoints, expected, self.timeout).leds
        except BoardError:
            return io_state(self.endpoints).leds


def running_board() -> Endpoints:
    """The one board `tessera sim` started that is still running (BoardError if none or several)."""
    found = [endpoints for path in sorted(RUNNING_ROOT.glob("*.json")) if (endpoints := find_running(path.stem))]
    if len(found) != 1:
        what = "no virtual board is running" if not found else f"{len(found)} virtual boards are running"
        raise BoardError(f"{what}: start one with `tessera sim` or name it with --board HOST:CONTROL_PORT")
    return found[0]


def _board(text: str | None) -> Endpoints:
    if text is None:
        return running_board()
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise BoardError(f"--board {text!r}: expected HOST:CONTROL_PORT")
    return Endpoints(host, 0, int(port), None, 0)


def main(argv: Sequence[str] | None = None, prog: str = "tessera io") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="Play the virtual board's buttons and read its LEDs.")
    parser.add_argument("--board", metavar="HOST:CONTROL_PORT", help="the board's control socket (default: the one "
                                                                      "`tessera sim` started)")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("show", help="print the LED and button levels")
    pressed = actions.add_parser("press", help="press and release a button")
    pressed.add_argument("button", type=int)
    pressed.add_argument("--hold-cycles", type=int, default=DEFAULT_HOLD_CYCLES,
                         help=f"chip cycles held down and then up (default {DEFAULT_HOLD_CYCLES}: 3 debounce "
                              f"intervals of 5 ms at {DEFAULT_CLOCK_HZ} Hz)")
    levels = actions.add_parser("buttons", help="set every button's level (bit i = button i down)")
    levels.add_argument("mask", type=lambda text: int(text, 0))
    options = parser.parse_args(argv)
    try:
        endpoints = _board(options.board)
        if options.action == "press":
            press(endpoints, options.button, options.hold_cycles)
        elif options.action == "buttons":
            set_buttons(endpoints, options.mask)
        state = io_state(endpoints)
    except BoardError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    print(f"leds={state.leds:#b} buttons={state.buttons:#b} cycle={state.cycles}")
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m tessera.sim.board_io"))

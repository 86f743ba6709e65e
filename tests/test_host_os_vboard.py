"""`tessera reload`, `top` and `trace` end to end on the virtual board (the chip top under Verilator, `--target
sim`): a service replaced under load loses no message and keeps their order while an unrelated pair keeps its
pace (measured in chip cycles); then the CLI through a `tessera run` session: top's frames, the trace drawing's
link loads, and reloading the now idle service back."""

from __future__ import annotations

import io
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tessera.firmware.isa import TileState
from tessera.os.build import build_image
from tessera.os.chip import Chip
from tessera.os.cli import main
from tessera.os.image import read_image, write_image
from tessera.os.link import open_link
from tessera.os.manifest import load_manifest
from tessera.os.runner import Runner

# Helpers in tests/ (tests/conftest.py puts the folder on sys.path).
import host_os_fakechip as fake
import host_os_reload_system as system


COUNT, PERIOD = 200_000, 2_000  # the stream outlasts the test; a beat every 2000 cycles

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("vboard")
    with open_link("sim") as link:
        chip = Chip(link)
        params = {"tiles": chip.info.tile_count, "mem_bytes": chip.info.mem_bytes,
                  "mailbox_depth": chip.info.mailbox_depth}  # the system is built for the chip `sim` runs
        v1 = system.write(folder, version=1, count=COUNT, period=PERIOD, **params)
        v2 = system.write(folder, version=2, count=COUNT, period=PERIOD, name="app2", **params)
        out = io.StringIO()
        runner = Runner(chip, read_image(v1), image_path=v1, out=out, progress=io.StringIO())
        runner.boot()
        yield runner, v1, v2, out
        runner.shutdown()


#: Halt/run pairs in the stop test: the sink spends a few answer cycles per number, so a core that abandoned an
#: answered message instruction lost or repeated one in about every other run of 400 stops.
STOPS = 1000


def test_halting_a_busy_tile_again_and_again_loses_and_repeats_no_message(board) -> None:
    runner, _, _, _ = board
    chip = runner.chip
    fake.pump_until(runner, lambda: chip.status(system.SINK).messages_in >= 50)
    for _ in range(STOPS):
        chip.halt(system.SINK)
        chip.run(system.SINK)
    chip.send(system.SINK, system.QUERY, [0])
    reply = chip.take(lambda m: m.source == system.SINK and m.tag == system.QUERY, 10.0)
    assert reply is not None and chip.status(system.SINK).state != TileState.TRAPPED
    count, errors, expected, version = reply.words
    assert (errors, version) == (0, 1) and expected == count > 50


def test_reload_under_load_on_the_chip(board) -> None:
    runner, _, v2, _ = board
    chip = runner.chip
    fake.pump_until(runner, lambda: chip.status(system.SINK).messages_in >= 200)
    first = chip.status(system.TALLY)
    time.sleep(0.5)
    before = chip.status(system.TALLY)
    summary = runner.reload_service("sink", read_image(v2), "app2.tsi")
    after = chip.status(system.TALLY)
    assert summary == "state handed over (1 fields, 12 bytes: state)"
    pace = (before.messages_in - first.messages_in) / (before.cycle - first.cycle)
    assert pace > 0
    assert after.messages_in - before.messages_in >= 0.8 * pace * (after.cycle - before.cycle) - 1
    assert chip.status(system.STREAMER).state != TileState.TRAPPED  # held back, then going on
    sent_so_far = chip.status(system.STREAMER).messages_out
    chip.send(system.SINK, system.QUERY, [0])
    reply = chip.take(lambda m: m.source == system.SINK and m.tag == system.QUERY, 10.0)
    assert reply is not None
    count, errors, expected, version = reply.words
    assert (errors, version) == (0, 2) and expected == count  # every number so far, in order, across both builds
    assert count >= min(sent_so_far, 200)

    # the Python tally replaced by a build with an upgrade hook: it runs instead of init, with the beats handed over
    beats = chip.status(system.TALLY).messages_in
    summary = runner.reload_service("tally", read_image(upgraded_tally(v2)), "app3.tsi")
    assert summary == ("state handed over (1 fields, 4 bytes: beats); new fields upgraded start from their initial "
                       "values; upgrade() runs instead of init()")
    chip.send(system.TALLY, system.QUERY, [0])
    reply = chip.take(lambda m: m.source == system.TALLY and m.tag == system.QUERY, 10.0)
    assert reply is not None
    counted, upgraded = reply.words
    assert upgraded == 1 and counted >= beats  # (the counter restarted with the new build; the field did not)


TALLY_UPGRADED = '''"""Counts beats; answers QUERY with (beats, whether upgrade ran)."""

from tessera.os.service_api import Message, Service, reply


class Tally(Service):
    beats: int = 0
    upgraded: int = 0

    def upgrade(self) -> None:
        self.upgraded = 1

    def handle(self, msg: Message) -> None:
        if msg.tag == QUERY:
            reply(self.beats, self.upgraded)
        else:
            self.beats += 1
'''


def upgraded_tally(image: Path) -> Path:
    """`image`'s system with TALLY_UPGRADED as the tally, built next to it as app3.tsi."""
    folder = image.parent
    (folder / "tally3.py").write_text(TALLY_UPGRADED.replace("QUERY:", f"{system.QUERY}:"))
    manifest = image.with_suffix(".toml").read_text().replace('source = "tally.py"', 'source = "tally3.py"')
    (folder / "app3.toml").write_text(manifest)
    write_image(build_image(load_manifest(folder / "app3.toml")), folder / "app3.tsi")
    return folder / "app3.tsi"


@pytest.fixture(scope="module")
def session(board, tmp_path_factory: pytest.TempPathFactory):
    runner, v1, v2, _ = board
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TESSERA_SESSION_DIR", str(tmp_path_factory.mktemp("sessions")))
        with fake.serving(runner, "sim"):
            yield runner, v1, v2


def test_top_trace_and_reload_through_the_session(session, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    runner, v1, _ = session
    assert main(["top", "--iterations", "2", "--interval", "0.5", "--target", "sim"]) == 0
    frames = capsys.readouterr().out.split("\n\n")
    assert len(frames) == 2
    rows = {line.split()[1]: line.split() for line in frames[1].splitlines()[2:]}
    assert float(rows["streamer"][-1]) > 0 and float(rows["tally"][-2]) > 0

    output = tmp_path / "trace.svg"
    assert main(["trace", "--seconds", "1", "-o", str(output), "--target", "sim"]) == 0
    root = ET.parse(output).getroot()
    stops = {e.get("data-stop"): e.attrib for e in root.iter() if e.get("class") == "stop"}
    links = {(e.get("data-from"), e.get("data-to")): int(e.get("data-load")) for e in root.iter()
             if e.get("class") == "link"}
    streamed, beats = int(stops["0 streamer"]["data-out"]), int(stops["2 beat"]["data-out"])
    assert streamed > 20 and beats > 2
    pairs = {("0 streamer", "1 sink"): streamed, ("2 beat", "3 tally"): beats}
    assert {key: load for key, load in links.items() if load} == pairs  # no host traffic in this window

    assert main(["stop", "streamer", "--target", "sim"]) == 0  # the sink goes idle
    assert main(["reload", str(v1), "sink", "--target", "sim"]) == 0
    assert capsys.readouterr().out.endswith("reloaded sink: state handed over (1 fields, 12 bytes: state)\n")
    assert main(["call", "sink", "0", "--tag", str(system.QUERY), "--target", "sim"]) == 0
    count, errors, expected, version = map(int, capsys.readouterr().out.split())
    assert (errors, version, expected) == (0, 1, count) and count > streamed

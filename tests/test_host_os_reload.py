"""`tessera reload` on the fake chip: a service replaced while a sender streams to it loses no message and keeps
their order, its state is handed over, an unrelated pair keeps its pace and receives no command; an idle service
and a service waiting inside its handler are told apart; incompatible images and a missing session are refused
with one line."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from tessera.os.chip import Chip
from tessera.os.cli import main
from tessera.os.image import read_image, write_image
from tessera.os.reload import ReloadError, runtime_points
from tessera.os.runner import Runner

# Helpers in tests/ (tests/conftest.py puts the folder on sys.path).
import host_os_fakechip as fake
import host_os_reload_system as system


COUNT, PERIOD = 400, 400


def boot(path: Path) -> tuple[object, Runner, io.StringIO]:
    chip = fake.FakeChip()
    out = io.StringIO()
    runner = Runner(Chip(fake.FakeChipLink(chip).open(), reply_timeout=0.2), read_image(path), image_path=path,
                    out=out, progress=io.StringIO())
    runner.boot()
    return chip, runner, out


CHATTER_PY = '''"""Logs msg[0] for ever: keeps the host's mailbox full."""

from tessera.os.service_api import Message, Service, log


class Chatter(Service):
    def handle(self, msg: Message) -> None:
        while True:
            log(msg[0])
'''


def one_service_image(folder: Path, name: str, source: str, tile: int, *, persist: bool = False,
                      chatter: bool = False) -> Path:
    """folder/app.tsi: the Python service `name` (its source text) on `tile` of a 4-tile chip, alone or with a
    `chatter` on tile 0 that floods the host with log lines."""
    from tessera.os.build import build_image
    from tessera.os.manifest import load_manifest

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(source)
    (folder / "chatter.py").write_text(CHATTER_PY)
    extra = '[services.chatter]\nsource = "chatter.py"\ntile = 0\n' if chatter else ""
    start = '[[messages]]\nto = "chatter"\nwords = [1]\n' if chatter else ""
    children = f'["chatter", "{name}"]' if chatter else f'["{name}"]'
    (folder / "app.toml").write_text(f"""[chip]
tiles = 4
mem_bytes = 1024
mailbox_depth = 4
[services.{name}]
source = "{name}.py"
tile = {tile}
persist = {str(persist).lower()}
{extra}[supervisors.root]
strategy = "one_for_one"
max_restarts = 3
children = {children}
{start}""")
    write_image(build_image(load_manifest(folder / "app.toml")), folder / "app.tsi")
    return folder / "app.tsi"


def query(runner: Runner) -> tuple[int, ...]:
    runner.chip.send(system.SINK, system.QUERY, [0])
    reply = runner.chip.take(lambda m: m.source == system.SINK and m.tag == system.QUERY, 10.0)
    assert reply is not None
    return reply.words


def test_reload_under_load_loses_nothing_and_hands_the_state_over(tmp_path: Path) -> None:
    v1 = system.write(tmp_path, version=1, count=COUNT, period=PERIOD, persist=True)
    v2 = system.write(tmp_path, version=2, count=COUNT, period=PERIOD, name="app2", persist=True)
    chip, runner, out = boot(v1)
    fake.pump_until(runner, lambda: chip.messages_in[system.SINK] >= 40)
    commands_before = len(chip.control_log)
    beats_before, cycle_before = chip.messages_in[system.TALLY], chip.noc.cycle
    summary = runner.reload_service("sink", read_image(v2), "app2.tsi")
    beats_after, cycle_after = chip.messages_in[system.TALLY], chip.noc.cycle
    assert summary == "state handed over (1 fields, 12 bytes: state)"
    assert f"streamer (tile 0): log: {COUNT}" not in out.getvalue()  # the reload happened in mid-stream
    assert {tile for _, tile in chip.control_log[commands_before:]} == {system.SINK}
    # the beat kept its pace while the sink was replaced: within 20 % of its rate before
    pace = beats_before / cycle_before
    assert beats_after - beats_before >= 0.8 * pace * (cycle_after - cycle_before) - 1
    fake.pump_until(runner, lambda: f"streamer (tile 0): log: {COUNT}" in out.getvalue())
    assert query(runner) == (COUNT, 0, COUNT, 2)  # all numbers, in order, counted on from where v1 stopped
    assert "reloaded: tile 1 service sink from app2.tsi: state handed over" in out.getvalue()
    assert runner.by_tile[system.SINK].memory == read_image(v2).tiles[system.SINK].memory

    # an idle service (waiting in the dispatch loop's receive) is at its boundary: reload it back to v1
    assert runner.reload_service("sink", read_image(v1), "app.tsi").startswith("state handed over")
    assert query(runner) == (COUNT, 0, COUNT, 1)
    # a restart now loads the new code, and the persistent sink gets the handed-over state back
    assert (tmp_path / "app.sink.state.json").exists()
    runner.restart_service("sink")
    assert query(runner) == (COUNT, 0, COUNT, 1)


WAITER_PY = '''"""Adds the first word of two consecutive messages: the second is received inside the handler."""

from tessera.os.service_api import Message, Service, receive, reply


class Waiter(Service):
    def handle(self, msg: Message) -> None:
        second = receive()
        reply(msg[0] + second[0])
'''


def test_a_service_waiting_inside_its_handler_is_not_at_its_boundary(tmp_path: Path) -> None:
    path = one_service_image(tmp_path, "waiter", WAITER_PY, 1)
    chip, runner, _ = boot(path)
    runner.chip.send(1, 0, [40])  # the handler now waits for the second message
    fake.pump_until(runner, lambda: chip.messages_in[1] == 1 and chip.tiles[1].state.name == "SLEEPING")
    with pytest.raises(ReloadError, match=r"tile 1 did not finish its message within 0.5 s: not reloaded"):
        runner.reload_service("waiter", read_image(path), "app.tsi", timeout=0.5)
    runner.chip.send(1, 0, [2])  # the old code still holds the first message and finishes it
    reply = runner.chip.take(lambda m: m.source == 1, 10.0)
    assert reply is not None and reply.words == (42,)
    fake.pump_until(runner, lambda: chip.tiles[1].state.name == "SLEEPING")
    assert runner.reload_service("waiter", read_image(path), "app.tsi") == "state handed over (0 fields, 0 bytes)"


def test_incompatible_images_are_refused_with_one_line(tmp_path: Path) -> None:
    v1 = system.write(tmp_path, version=1, count=10, period=PERIOD)
    _, runner, _ = boot(v1)
    image = read_image(v1)
    bigger = dataclasses.replace(image, chip=dataclasses.replace(image.chip, mailbox_depth=8))
    with pytest.raises(ReloadError, match=r"^new.tsi cannot replace sink on the running system: it was built for "
                                          r"another chip"):
        runner.reload_service("sink", bigger, "new.tsi")
    renamed = dataclasses.replace(image, names=tuple(dataclasses.replace(entry, name="tally2")
                                                     if entry.name == "tally" else entry for entry in image.names))
    with pytest.raises(ReloadError, match=r"the names differ \(tally, tally2\)"):
        runner.reload_service("sink", renamed, "new.tsi")
    runner.stop_service("sink")
    with pytest.raises(ReloadError, match=r"^sink is not running: `tessera restart sink` starts it"):
        runner.reload_service("sink", image, "new.tsi")


def test_reload_command_through_the_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TESSERA_SESSION_DIR", str(tmp_path / "sessions"))
    v1 = system.write(tmp_path, version=1, count=50, period=PERIOD)
    v2 = system.write(tmp_path, version=2, count=50, period=PERIOD, name="app2")
    target = "tcp:127.0.0.1:9"
    assert main(["reload", str(v2), "sink", "--target", target]) == 1
    assert capsys.readouterr().err == (f"tessera: error: no `tessera run` session serves {target}: reload replaces "
                                       f"code in the system it runs (start it with `tessera run IMAGE --target "
                                       f"{target}`)\n")
    _, runner, out = boot(v1)
    with fake.serving(runner, target):
        assert main(["reload", str(v2), "sink", "--target", target]) == 0
        assert capsys.readouterr().out == "reloaded sink: state handed over (1 fields, 12 bytes: state)\n"
        assert main(["reload", str(v2), "nobody", "--target", target]) == 1
        assert "tessera: error: no service 'nobody' in" in capsys.readouterr().err


SLOW_V1 = '''"""Adds msg[0] to a running total after a pause, saves it and replies with the total."""

from tessera.os.service_api import Message, Service, reply, sleep, snapshot


class Slow(Service):
    total: int = 0

    def handle(self, msg: Message) -> None:
        sleep(3000)
        self.total += msg[0]
        snapshot()
        reply(self.total)
'''

# The new build declares a field before `total`, so `total` moves: the handover goes by name.
SLOW_V2 = '''"""As v1, and replies with a second word from a field v1 did not have."""

from tessera.os.service_api import Message, Service, reply, sleep, snapshot


class Slow(Service):
    marker: int = 7
    total: int = 0

    def handle(self, msg: Message) -> None:
        sleep(3000)
        self.total += msg[0]
        snapshot()
        reply(self.total, self.marker)
'''


def test_a_busy_python_service_is_replaced_between_messages_with_its_fields_moved(tmp_path: Path) -> None:
    paths = [one_service_image(tmp_path / f"v{version}", "slow", source, 2, persist=True, chatter=True)
             for version, source in ((1, SLOW_V1), (2, SLOW_V2))]
    old, new = (read_image(path).tiles[1] for path in paths)
    assert [f.name for f in new.state_fields] == ["marker", "total"]
    assert {f.name: f.address for f in old.state_fields}["total"] != {f.name: f.address for f in
                                                                      new.state_fields}["total"]
    chip, runner, out = boot(paths[0])
    for value in (1, 2, 3, 4, 5):  # queued: the tile works through them one pause at a time
        runner.chip.send(2, 0, [value])
    first = runner.chip.take(lambda m: m.source == 2 and m.tag == 0, 10.0)
    assert first is not None and first.words == (1,)
    # working through the queue, not waiting in a receive: the reload lets it finish the message in hand
    assert chip.tiles[2].state.name == "RUNNING" and chip.tiles[2].pc != runtime_points().receive
    summary = runner.reload_service("slow", read_image(paths[1]), "v2/app.tsi")
    assert summary == ("state handed over (1 fields, 4 bytes: total); new fields marker start from their initial "
                       "values")

    def replies() -> list[list[int]]:  # the runner prints what it handles, also while the reload waited
        return [[int(word) for word in line.split(": message tag 0: ")[1].split()]
                for line in out.getvalue().splitlines() if "slow (tile 2): message tag 0: " in line]

    fake.pump_until(runner, lambda: len(replies()) == 4)
    # every message answered once, in order, the running total carried across; v2 answers with two words
    assert [words[0] for words in replies()] == [3, 6, 10, 15]
    assert replies()[-1] == [15, 7]
    # the snapshots v1 sent before the swap were all in before the handover replaced them: a restart restores
    # the total where v2 keeps it (a late v1 snapshot, stored as v2's, would put it into `marker`)
    runner.restart_service("slow")
    runner.chip.send(2, 0, [0])
    fake.pump_until(runner, lambda: len(replies()) == 5)
    assert replies()[-1] == [15, 7]


FRAGILE_PY = '''"""Fails an assert on 99, after a pause long enough (hundreds of host polls) for a test to catch it in."""

from tessera.os.service_api import Message, Service, reply, sleep


class Fragile(Service):
    def handle(self, msg: Message) -> None:
        sleep(100_000)
        assert msg[0] != 99, "poison"
        reply(msg[0])
'''


def test_a_service_that_fails_while_finishing_its_message_is_left_to_its_supervisor(tmp_path: Path) -> None:
    path = one_service_image(tmp_path, "fragile", FRAGILE_PY, 3)
    chip, runner, out = boot(path)
    runner.chip.send(3, 0, [99])
    fake.pump_until(runner, lambda: chip.messages_in[3] == 1)  # in the pause before the failing assert
    with pytest.raises(ReloadError, match=r"^tile 3 went down \(ASSERTION\) while finishing its message: its "
                                          r"supervisor handles it; not reloaded$"):
        runner.reload_service("fragile", read_image(path), "app.tsi")
    assert runner.services["fragile"].restarts == 1 and "restarted: tile 3 service fragile" in out.getvalue()
    runner.chip.send(3, 0, [5])
    reply = runner.chip.take(lambda m: m.source == 3 and not m.is_down, 10.0)
    assert reply is not None and reply.words == (5,)  # the supervisor's restart loaded the image whole


UPGRADING_V1 = '''"""Adds msg[0] to a total that init starts at 100; replies with the total."""

from tessera.os.service_api import Message, Service, reply


class Upgrading(Service):
    total: int = 0

    def init(self) -> None:
        self.total = 100

    def handle(self, msg: Message) -> None:
        self.total += msg[0]
        reply(self.total)
'''

# v2 scales the handed-over total in its upgrade hook; its init (which would reset the total) does not run then.
UPGRADING_V2 = UPGRADING_V1.replace("    total: int = 0\n", "    scale: int = 10\n    total: int = 0\n").replace(
    "    def handle", "    def upgrade(self) -> None:\n        self.total = self.total * self.scale\n\n"
    "    def handle").replace("reply(self.total)", "reply(self.total, self.scale)")


def test_the_upgrade_hook_runs_instead_of_init_after_the_handover(tmp_path: Path) -> None:
    from tessera.os.service_runner import ServiceRunner

    paths = [one_service_image(tmp_path / f"v{version}", "upgrading", source, 1)
             for version, source in ((1, UPGRADING_V1), (2, UPGRADING_V2))]
    chip, runner, _ = boot(paths[0])

    def ask(value: int) -> tuple[int, ...]:
        runner.chip.send(1, 0, [value])
        reply = runner.chip.take(lambda m: m.source == 1 and m.tag == 0, 10.0)
        assert reply is not None
        return reply.words

    assert ask(5) == (105,)
    summary = runner.reload_service("upgrading", read_image(paths[1]), "v2/app.tsi")
    assert summary == ("state handed over (1 fields, 4 bytes: total); new fields scale start from their initial "
                       "values; upgrade() runs instead of init()")
    assert ask(1) == (1051, 10)
    # the CPython runner, handed the same state, agrees
    old = ServiceRunner(UPGRADING_V1, "v1.py")
    old.start()
    old.deliver(0, 0, 5)
    new = ServiceRunner(UPGRADING_V2, "v2.py")
    new.take_state(old)
    new.start(handed_over=True)
    new.deliver(0, 0, 1)
    assert [message.words for message in old.sent + new.sent] == [(105,), (1051, 10)]
    # a restart loads the image afresh: init runs, not upgrade
    runner.restart_service("upgrading")
    assert ask(1) == (101, 10)
    # without an upgrade hook the new build's init runs after the handover, as on any start
    assert runner.reload_service("upgrading", read_image(paths[0]), "v1/app.tsi") == (
        "state handed over (1 fields, 4 bytes: total); dropped fields scale")
    assert ask(1) == (101,)

"""Property tests of the runner's supervision on the fake chip: random supervision trees over the four worker
tiles, random fault sequences (watchdog faults at random times) under every strategy. After each fault the tiles
the runner commands are exactly those the reference model (tests/test_supervision.py) stops or restarts, restarts
run in start order, escalation past the root stops the system, and every surviving service answers the message
it was sent just before the fault (no message to a survivor is lost)."""

from __future__ import annotations

import dataclasses
import io
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera.firmware.isa import Cause
from tessera.os.chip import Chip, Incoming
from tessera.os.image import RuntimeImage, read_image
from tessera.os.runner import Runner
from tessera.os.supervision import Strategy, SupervisorSpec

# Helpers in tests/ (tests/conftest.py puts the folder on sys.path).
import host_os_fakechip as fake
from test_supervision import Reference

NAMES = ("solo", "a", "b", "c")  # on tiles 0..3 (host_os_fakechip.write_system)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> RuntimeImage:
    return read_image(fake.write_system(tmp_path_factory.mktemp("system")))


@st.composite
def trees(draw: st.DrawFn) -> SupervisorSpec:
    """A supervision tree over the four services in a random order: each supervisor splits its services into two
    or three consecutive groups (a group of one is a service, a larger one a nested supervisor), or has them all
    as its children."""
    numbers = itertools.count()

    def node(services: list[str]) -> SupervisorSpec:
        groups = draw(st.integers(1, min(3, len(services))))
        cuts = sorted(draw(st.lists(st.integers(1, len(services) - 1), min_size=groups - 1, max_size=groups - 1,
                                    unique=True))) if groups > 1 else []
        bounds = list(zip([0, *cuts], [*cuts, len(services)])) if groups > 1 else [(i, i + 1) for i in
                                                                                    range(len(services))]
        children = tuple(services[a] if b - a == 1 else node(services[a:b]) for a, b in bounds)
        return SupervisorSpec(f"sup{next(numbers)}", draw(st.sampled_from(list(Strategy))), draw(st.integers(0, 3)),
                              draw(st.integers(1, 40)), children)

    return node(list(draw(st.permutations(NAMES))))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                HealthCheck.too_slow])
@given(tree=trees(), data=st.data())
def test_the_runner_follows_the_reference_model(image: RuntimeImage, tree: SupervisorSpec,
                                                data: st.DataObject) -> None:
    now = [0.0]  # the runner's clock, seconds: the test moves it
    chip = fake.FakeChip()
    runner = Runner(Chip(fake.FakeChipLink(chip).open(), reply_timeout=0.2), dataclasses.replace(image, tree=tree),
                    out=io.StringIO(), progress=io.StringIO(), clock=lambda: now[0])
    replies: list[Incoming] = []
    downs: list[Incoming] = []
    runner.on_message = lambda message: replies.append(message) or True
    runner.watchers.append(lambda message: downs.append(message) if message.is_down else None)
    runner.boot()
    reference = Reference(tree)
    tile = {name: number for number, name in enumerate(NAMES)}
    serial = itertools.count(1000)
    for _ in range(data.draw(st.integers(1, 6), label="faults")):
        if reference.stopped:
            break
        now[0] += data.draw(st.integers(0, 30), label="ms before the fault") / 1000
        failed = data.draw(st.sampled_from(sorted(reference.running)), label="failing service")
        asked = {name: next(serial) for name in sorted(reference.running - {failed})}
        for name, value in asked.items():  # queued in the survivors' mailboxes while the runner handles the fault
            runner.chip.send(tile[name], fake.ECHO_PLUS_ONE, [value])
        chip.control_log.clear()
        handled = len(downs)
        chip.inject_fault(tile[failed], Cause.WATCHDOG)
        fake.pump_until(runner, lambda: len(downs) > handled, timeout=20)
        stopped, restarted, system_stopped = reference.down(int(now[0] * 1000), failed)

        commanded = {number for _, number in chip.control_log}
        assert commanded == {tile[name] for name in stopped + restarted}
        assert [number for op, number in chip.control_log if op == "run"] == [tile[name] for name in restarted]
        assert (runner.stopped_report is not None) == system_stopped
        survivors = set(asked) - set(stopped) - set(restarted)
        expected = {(tile[name], asked[name] + 1) for name in survivors}
        answered = lambda: expected <= {(m.source, m.words[0]) for m in replies}  # noqa: E731
        fake.pump_until(runner, answered, timeout=20)
        if not system_stopped:
            assert {name for name, state in runner.services.items() if state.running} == reference.running

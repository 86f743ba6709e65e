"""The supervision state machine: OTP strategies and restart intensity, checked by hand on small trees and by
hypothesis against a small reference model over random trees and random DOWN sequences."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.os.supervision import (
    Event,
    RestartTiles,
    StopSystem,
    StopTiles,
    Strategy,
    Supervision,
    SupervisorSpec,
)

ONE, ALL, REST = Strategy.ONE_FOR_ONE, Strategy.ONE_FOR_ALL, Strategy.REST_FOR_ONE


def sup(name: str, strategy: Strategy, *children: str | SupervisorSpec, max_restarts: int = 3,
        period_ms: int = 1000) -> SupervisorSpec:
    return SupervisorSpec(name, strategy, max_restarts, period_ms, children)


def machine(tree: SupervisorSpec) -> Supervision:
    """Service sN runs on tile N."""
    supervision = Supervision(tree, {name: int(name[1:]) for name in tree.services()})
    supervision.start(0)
    return supervision


def test_start_runs_everything_in_depth_first_order() -> None:
    tree = sup("root", ONE, "s3", sup("inner", ALL, "s1", "s0"), "s2")
    supervision = Supervision(tree, {"s0": 0, "s1": 1, "s2": 2, "s3": 3})
    decision = supervision.start(5)
    assert decision.actions == (RestartTiles((3, 1, 0, 2)),)
    assert [(r.event, r.service, r.time_ms) for r in decision.log] == [
        (Event.STARTED, "s3", 5), (Event.STARTED, "s1", 5), (Event.STARTED, "s0", 5), (Event.STARTED, "s2", 5)]


def test_one_for_one_restarts_only_the_failed_child() -> None:
    supervision = machine(sup("root", ONE, "s0", "s1", "s2"))
    decision = supervision.down(10, 1, "LOAD_FAULT")
    assert decision.actions == (RestartTiles((1,)),)
    assert decision.log[0].event is Event.DOWN
    assert (decision.log[0].time_ms, decision.log[0].tile, decision.log[0].service, decision.log[0].cause) == \
        (10, 1, "s1", "LOAD_FAULT")
    assert supervision.running == {"s0", "s1", "s2"}


def test_one_for_all_restarts_every_child() -> None:
    supervision = machine(sup("root", ALL, "s0", "s1", "s2"))
    assert supervision.down(10, 1, "ASSERTION").actions == (StopTiles((2, 0)), RestartTiles((0, 1, 2)))


def test_rest_for_one_restarts_the_failed_child_and_later_ones() -> None:
    supervision = machine(sup("root", REST, "s0", "s1", sup("inner", ONE, "s2", "s3"), "s4"))
    assert supervision.down(10, 1, "ECALL").actions == (StopTiles((4, 3, 2)), RestartTiles((1, 2, 3, 4)))
    assert supervision.down(11, 4, "ECALL").actions == (RestartTiles((4,)),)


def test_strategy_applies_only_inside_the_failed_childs_supervisor() -> None:
    """Tiles outside the affected subtree are never stopped."""
    supervision = machine(sup("root", ALL, "s0", sup("inner", ALL, "s1", "s2"), "s3"))
    assert supervision.down(10, 2, "WATCHDOG").actions == (StopTiles((1,)), RestartTiles((1, 2)))


def test_intensity_exceeded_escalates_to_the_parent() -> None:
    tree = sup("root", ONE, "s0", sup("inner", ONE, "s1", "s2", max_restarts=1, period_ms=100), "s3")
    supervision = machine(tree)
    assert supervision.down(10, 1, "fault").actions == (RestartTiles((1,)),)
    decision = supervision.down(50, 1, "fault")  # second restart within 100 ms: inner gives up
    assert decision.actions == (StopTiles((2,)), RestartTiles((1, 2)))
    events = [(r.event, r.service, r.supervisor) for r in decision.log]
    assert events == [(Event.DOWN, "s1", "inner"), (Event.GAVE_UP, None, "inner"), (Event.STOPPED, "s2", "inner"),
                      (Event.RESTARTED, "s1", "inner"), (Event.RESTARTED, "s2", "inner")]
    # The restarted inner supervisor starts with a fresh history: one more failure is within its intensity.
    assert supervision.down(60, 2, "fault").actions == (RestartTiles((2,)),)


def test_restarts_older_than_the_period_do_not_count() -> None:
    supervision = machine(sup("root", ONE, "s0", max_restarts=1, period_ms=100))
    assert supervision.down(0, 0, "f").actions == (RestartTiles((0,)),)
    assert supervision.down(101, 0, "f").actions == (RestartTiles((0,)),)
    decision = supervision.down(201, 0, "f")  # 101 and 201 are 100 ms apart: both count (OTP: now <= then + period)
    assert isinstance(decision.actions[-1], StopSystem)


def test_past_the_root_the_system_stops_with_a_report() -> None:
    supervision = machine(sup("root", ONE, "s0", sup("inner", ONE, "s1", max_restarts=0), "s2", max_restarts=0))
    decision = supervision.down(7, 1, "ILLEGAL_INSN")
    assert decision.actions[:-1] == (StopTiles((2, 0)),)
    report = decision.actions[-1]
    assert isinstance(report, StopSystem)
    assert "supervisor root gave up" in report.report and "s1 (tile 1) went down: ILLEGAL_INSN" in report.report
    assert decision.log[-1].event is Event.SYSTEM_STOPPED
    assert supervision.stopped and not supervision.running
    ignored = supervision.down(8, 0, "late")
    assert ignored.actions == () and ignored.log[0].event is Event.IGNORED


def test_down_before_start_is_ignored() -> None:
    supervision = Supervision(sup("root", ONE, "s0"), {"s0": 0})
    decision = supervision.down(1, 0, "stray")
    assert decision.actions == () and decision.log[0].event is Event.IGNORED
    assert decision.log[0].cause == "stray" and "not running" in decision.log[0].detail


def test_bad_inputs() -> None:
    supervision = machine(sup("root", ONE, "s0"))
    with pytest.raises(ValueError, match="tile 5, which runs no supervised service"):
        supervision.down(1, 5, "x")
    supervision.down(10, 0, "x")
    with pytest.raises(ValueError, match="time went backwards"):
        supervision.down(9, 0, "x")
    with pytest.raises(ValueError, match="services without a tile: s1"):
        Supervision(sup("root", ONE, "s0", "s1"), {"s0": 0})


# -- the reference model ----------------------------------------------------------------------------------------


@dataclass
class Reference:
    """OTP supervision written as directly as possible, over flat tables: parent of each node, children of each
    supervisor, and the services below each node."""

    tree: SupervisorSpec
    parent: dict[str, str] = field(default_factory=dict)
    children: dict[str, list[str]] = field(default_factory=dict)
    spec: dict[str, SupervisorSpec] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    history: dict[str, list[int]] = field(default_factory=dict)
    running: set[str] = field(default_factory=set)
    stopped: bool = False

    def __post_init__(self) -> None:
        def walk(node: SupervisorSpec) -> None:
            self.spec[node.name] = node
            self.children[node.name] = []
            self.history[node.name] = []
            for child in node.children:
                name = child.name if isinstance(child, SupervisorSpec) else child
                self.parent[name] = node.name
                self.children[node.name].append(name)
                if isinstance(child, SupervisorSpec):
                    walk(child)
                else:
                    self.order.append(name)
        walk(self.tree)
        self.running = set(self.order)

    def below(self, name: str) -> set[str]:
        if name not in self.children:
            return {name}
        return set().union(*(self.below(child) for child in self.children[name]))

    def supervisors_below(self, name: str) -> set[str]:
        if name not in self.children:
            return set()
        return {name}.union(*(self.supervisors_below(child) for child in self.children[name]))

    def down(self, now: int, service: str) -> tuple[list[str], list[str], bool]:
        """(stopped services in reverse start order, restarted in start order, system stopped)."""
        if self.stopped or service not in self.running:
            return [], [], False
        self.running.discard(service)
        stopped: set[str] = set()
        node, supervisor = service, self.parent[service]
        while True:
            spec = self.spec[supervisor]
            self.history[supervisor] = [t for t in self.history[supervisor] if now - t <= spec.period_ms] + [now]
            if len(self.history[supervisor]) <= spec.max_restarts:
                break
            stopped |= self.running & self.below(supervisor)
            self.running -= self.below(supervisor)
            if supervisor not in self.parent:
                self.stopped = True
                return self.reverse(stopped), [], True
            node, supervisor = supervisor, self.parent[supervisor]
        siblings = self.children[supervisor]
        if spec.strategy is Strategy.ONE_FOR_ONE:
            affected = [node]
        elif spec.strategy is Strategy.ONE_FOR_ALL:
            affected = siblings
        else:
            affected = siblings[siblings.index(node):]
        restart = set().union(*(self.below(child) for child in affected))
        stopped |= self.running & restart
        self.running |= restart
        for child in affected:
            for nested in self.supervisors_below(child):
                self.history[nested] = []
        return self.reverse(stopped), [s for s in self.order if s in restart], False

    def reverse(self, services: set[str]) -> list[str]:
        return [s for s in reversed(self.order) if s in services]


@st.composite
def random_trees(draw: st.DrawFn) -> SupervisorSpec:
    counter = iter(range(1000))
    supervisors = iter(range(1000))

    def node(depth: int) -> SupervisorSpec:
        children: list[str | SupervisorSpec] = []
        for _ in range(draw(st.integers(1, 3))):
            if depth < 3 and draw(st.integers(0, 2)) == 0:
                children.append(node(depth + 1))
            else:
                children.append(f"s{next(counter)}")
        return SupervisorSpec(f"sup{next(supervisors)}", draw(st.sampled_from(list(Strategy))),
                              draw(st.integers(0, 3)), draw(st.integers(1, 60)), tuple(children))

    return node(0)


@settings(max_examples=300, deadline=None)
@given(random_trees(), st.data())
def test_matches_the_reference_model(tree: SupervisorSpec, data: st.DataObject) -> None:
    services = list(tree.services())
    tiles = data.draw(st.permutations(range(len(services))))
    placement = dict(zip(services, tiles))
    supervision = Supervision(tree, placement)
    supervision.start(0)
    reference = Reference(tree)
    now = 0
    for _ in range(data.draw(st.integers(1, 25))):
        now += data.draw(st.integers(0, 30))
        service = data.draw(st.sampled_from(services))
        decision = supervision.down(now, placement[service], "fault")
        stopped, restarted, system_stopped = reference.down(now, service)
        expected = []
        if stopped:
            expected.append(StopTiles(tuple(placement[s] for s in stopped)))
        if restarted:
            expected.append(RestartTiles(tuple(placement[s] for s in restarted)))
        assert decision.actions[:len(expected)] == tuple(expected)
        assert (len(decision.actions) == len(expected) + 1) == system_stopped
        assert supervision.running == reference.running
        assert supervision.stopped == reference.stopped
        first = decision.log[0]
        assert (first.time_ms, first.tile, first.service, first.cause) == (now, placement[service], service, "fault")
        assert all(record.time_ms == now and record.cause == "fault" for record in decision.log)
        logged = {(r.event, r.service) for r in decision.log}
        assert all((Event.STOPPED, s) in logged for s in stopped)
        assert all((Event.RESTARTED, s) in logged for s in restarted)

"""The example services and the messaging API: compiled on the golden tile model and run in CPython, equal.

Messages are delivered one at a time after start, as a supervisor would; replies, log lines, sends, fields and
faults must be the same on both sides.
"""

from __future__ import annotations

import pytest

from tessera.firmware.isa import Cause
from tessera.os.codegen_support import HOST_NODE, LOG_TAG
from tessera.os.service_api import FaultReason
from tessera.os.service_bench import EXAMPLE_REQUESTS, example_source, measure
from tessera.os.service_runner import Outgoing, ServiceRunner
from tessera.os.service_tile import TileService

NAMES = {"kv": 3, "audit": 5}


def run_both(source: str, requests: list[tuple[int, ...]], *, before_start: int = 0, node: int = 2,
             permitted: frozenset[int] | None = None, mem_bytes: int = 1024) -> tuple[TileService, ServiceRunner]:
    tile = TileService(source, "svc.py", names=NAMES, node=node, permitted=permitted, mem_bytes=mem_bytes)
    runner = ServiceRunner(source, "svc.py", names=NAMES, node=node, permitted=permitted)
    for index, request in enumerate(requests):
        if index == before_start:
            tile.start()
            runner.start()
        tile.deliver(*request)
        runner.deliver(*request)
    if before_start >= len(requests):
        tile.start()
        runner.start()
    assert tile.sent == runner.sent
    assert tile.field_values() == runner.field_values()
    if runner.fault is None:
        assert tile.fault is None, tile.fault
    else:
        assert tile.fault is not None, runner.fault
        assert (tile.fault.cause, tile.fault.reason) == (runner.fault.cause, runner.fault.reason)
    return tile, runner


@pytest.mark.parametrize("name", sorted(EXAMPLE_REQUESTS))
def test_example_agrees_with_cpython(name: str) -> None:
    tile, runner = run_both(example_source(name), EXAMPLE_REQUESTS[name])
    assert runner.fault is None
    assert len(runner.sent) == len(EXAMPLE_REQUESTS[name])


def test_example_results_are_right() -> None:
    _, kv = run_both(example_source("kv"), EXAMPLE_REQUESTS["kv"])
    assert [o.words for o in kv.sent] == [(1, 0), (1, 0), (1, 100), (1, 0), (0, 0), (1, 0)]
    _, primes = run_both(example_source("primes"), [(1, 0, 100)])
    assert primes.sent[0].words == (25, 97, 1060)
    _, counter = run_both(example_source("counter"), [(4, 1, 5), (4, 1, -7 & 0xFFFFFFFF), (4, 2, 0)])
    assert counter.sent[-1] == Outgoing(4, 2, (0xFFFFFFFE, 3))


@pytest.mark.parametrize("name", sorted(EXAMPLE_REQUESTS))
def test_example_fits_a_1k_tile(name: str) -> None:
    m = measure(example_source(name), f"{name}.py", EXAMPLE_REQUESTS[name])
    assert m.runtime_bytes <= 256
    assert m.runtime_bytes + m.code_bytes + m.stack_bytes <= 1024
    assert len(m.instructions_per_message) == len(EXAMPLE_REQUESTS[name])


def test_a_bad_request_faults_the_same_way() -> None:
    tile, runner = run_both(example_source("counter"), [(1, 1, 5), (1, 9, 0)])
    assert tile.fault is not None and tile.fault.reason is FaultReason.ASSERT
    tile, runner = run_both(example_source("echo"), [(1, 0, 5)])
    assert runner.fault is None


MESSAGING = '''
from tessera.os.service_api import Service, Array, Message, send, send_to, reply, receive, call, log, now, sleep, me

def total(m: Message) -> int:
    t = 0
    for i in range(len(m)):
        t += m[i]
    return t

class Relay(Service):
    seen: int = 0
    waiting: Array[int, 4]

    def init(self) -> None:
        log(me(), 1)

    def handle(self, msg: Message) -> None:
        self.seen += 1
        op = msg[0]
        if op == 1:      # store the value in kv, then report it to audit with our tag
            r = call("kv", 1, msg[1], tag=7)
            send("audit", r[0], total(r), tag=msg.tag)
        elif op == 2:    # wait briefly for a follow-up message
            start = now()
            follow = receive(timeout=100)
            if follow is None:
                reply(0)
            else:
                reply(follow.sender, len(follow), total(follow))
            assert now() - start >= 0
        elif op == 3:    # remember the sender, answer later
            self.waiting[msg[1] & 3] = msg.sender
            sleep(10)
            send_to(self.waiting[msg[1] & 3], 99, 98, 97, 96)
        elif op == 4:    # a blocking receive inside the handler
            m = receive()
            reply(m.tag, m[len(m) - 1])
        elif op == 5:    # the last received message may be None: reading it faults
            m = receive(timeout=0)
            reply(m.sender)
        else:
            log(op, msg.sender, msg.tag)
'''


def test_messaging_api_agrees() -> None:
    requests = [
        (9, 11, 1, 42), (3, 7, 1000, 2, 3),      # call: the next message is kv's reply
        (9, 12, 2), (4, 0, 5, 6, 7),             # receive with timeout finds a queued message
        (8, 14, 3, 2), (9, 15, 4), (6, 33, 1, 2, 77), (9, 0, 6),
        (9, 13, 2),                              # receive with timeout: nothing queued
    ]
    tile, runner = run_both(MESSAGING, requests, before_start=len(requests), mem_bytes=2048)
    assert runner.fault is None
    assert runner.sent == [
        Outgoing(HOST_NODE, LOG_TAG, (2, 1)),
        Outgoing(3, 7, (1, 42)),
        Outgoing(5, 11, (1000, 1005)),
        Outgoing(9, 12, (4, 3, 18)),
        Outgoing(8, 0, (99, 98, 97, 96)),
        Outgoing(9, 15, (33, 77)),
        Outgoing(HOST_NODE, LOG_TAG, (6, 9, 0)),
        Outgoing(9, 13, (0,)),
    ]


def test_a_waiting_handler_resumes_on_a_later_message() -> None:
    tile, runner = run_both(MESSAGING, [(9, 11, 1, 42), (3, 7, 1000), (9, 1, 4), (9, 2, 6), (9, 3, 6)],
                            mem_bytes=2048)
    assert runner.sent[-2:] == [Outgoing(9, 1, (2, 6)), Outgoing(HOST_NODE, LOG_TAG, (6, 9, 3))]


def test_timed_out_message_faults() -> None:
    tile, runner = run_both(MESSAGING, [(9, 0, 5)], mem_bytes=2048)
    assert runner.fault is not None and runner.fault.reason is FaultReason.NO_MESSAGE


def test_send_permissions_are_enforced() -> None:
    tile, runner = run_both(MESSAGING, [(9, 0, 3, 1)], permitted=frozenset({HOST_NODE}), mem_bytes=2048)
    assert runner.fault is not None and runner.fault.cause is Cause.SEND_DENIED
    assert tile.fault is not None and tile.fault.cause is Cause.SEND_DENIED


def test_bad_tag_and_timeout_are_message_faults() -> None:
    source = MESSAGING.replace("tag=msg.tag", "tag=msg.tag + 65536")
    _, runner = run_both(source, [(9, 1, 1, 5), (3, 0, 1)], mem_bytes=2048)
    assert runner.fault is not None and runner.fault.cause is Cause.MESSAGE_FAULT
    source = MESSAGING.replace("timeout=100", "timeout=msg[0] << 23")
    _, runner = run_both(source, [(9, 1, 2)], mem_bytes=2048)
    assert runner.fault is not None and runner.fault.cause is Cause.MESSAGE_FAULT

"""Random traffic on the RTL ring (Amaranth simulator), replayed cycle by cycle into the reference model.

Every node runs a random program of message instructions on its message port, as a core would: it sends messages of
random length to random nodes (blocking SEND and TRYSEND), receives with RECV/TRYRECV/RECVT, reads the payload with
GET, and stalls; one node hoards (stops receiving for long stretches, so its small mailbox stays full and senders to
it are NACKed). Each cycle the test tells the model which SENDs and message opens the RTL completed and then checks:
- every node's mailbox count equals the model's, on every cycle (the ring, ACK/NACK, retry and room decisions);
- every RECV header, GET word, COUNT and TRYSEND result equals the model's;
- a scoreboard: nothing lost, nothing duplicated, per-pair order kept, everything drained within a bound.
Every test runs on both mailbox layouts (the staged message in a block RAM of its own, and in the queue's): in the
one-EBR layout ejection and the router's staging reads take the mailbox's ports, so PUT/SEND and reads wait.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from amaranth.sim import Simulator

from tessera.hw.network import RingNetwork, node_address
from tessera.hw.noc_layouts import MAX_WORDS, MessageOp
from tessera.sim.noc_model import Message, NocModel

NUM_TILES = 3
DEPTH = 2
RETRY_DELAY = 12
QUOTA = 30  # messages per node
HOARDER = 1
DRAIN_BOUND = 6000  # cycles after the last send until the last receive


@pytest.fixture(params=[True, False], ids=["two-ebr-mailbox", "one-ebr-mailbox"])
def separate_staging(request: pytest.FixtureRequest) -> bool:
    """The mailbox layout of the ring's message units (`MessageUnit(separate_staging=...)`)."""
    return request.param


@dataclass
class Driver:
    """One node's random program, one instruction at a time (valid held until ready, then one idle cycle)."""

    address: int
    rng: random.Random
    hoarder: bool
    addresses: list[int]
    plan: list[tuple[MessageOp, int, int]] = field(default_factory=list)
    current: tuple[MessageOp, int, int] | None = None
    idle: int = 0
    sent: int = 0
    unread: int = 0
    seq_to: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    stall: int = 0
    quota: int = QUOTA

    def next_instruction(self, count: int) -> tuple[MessageOp, int, int] | None:
        if self.plan:
            return self.plan.pop(0)
        if self.unread:
            return (MessageOp.GET, 0, 0)
        if self.stall:
            self.stall -= 1
            return None
        roll = self.rng.random()
        if self.sent < self.quota and roll < 0.45:
            dest = self.rng.choice(self.addresses)
            words = [self.rng.getrandbits(32) for _ in range(self.rng.randint(1, MAX_WORDS))]
            tag = self.seq_to[dest]
            send = MessageOp.SEND if self.rng.random() < 0.5 else MessageOp.TRYSEND
            self.plan = [(MessageOp.PUT, w, 0) for w in words] + [(send, dest, tag)]
            return (MessageOp.STATUS, 0, 0)
        if roll < 0.5:
            hoarding = self.hoarder and self.sent < self.quota  # once done sending, the hoarder drains its mailbox
            self.stall = self.rng.randint(200, 1500) if hoarding else self.rng.randint(0, 20)
            return None
        if roll < 0.55:
            return (MessageOp.COUNT, 0, 0)
        if count and roll < 0.7:
            return (MessageOp.RECV, 0, 0)
        if roll < 0.85:
            return (MessageOp.RECVT, self.rng.randint(0, 30), 0)
        return (MessageOp.TRYRECV, 0, 0)


def run_stress(
    seed: int, *, retry_delay: int = RETRY_DELAY, quota: int = QUOTA, separate_staging: bool
) -> dict[str, int]:
    network = RingNetwork(num_tiles=NUM_TILES, depth=DEPTH, retry_delay=retry_delay, separate_staging=separate_staging)
    model = NocModel(NUM_TILES, depth=DEPTH, retry_delay=retry_delay)
    addresses = [node_address(i, NUM_TILES) for i in range(NUM_TILES + 1)]
    rng = random.Random(seed)
    drivers = [
        Driver(a, random.Random(rng.getrandbits(32)), i == HOARDER, addresses, quota=quota)
        for i, a in enumerate(addresses)
    ]
    for address in addresses:
        model.set_permissions(address, addresses)
    sent_log: dict[tuple[int, int], list[Message]] = defaultdict(list)
    received_log: dict[tuple[int, int], list[Message]] = defaultdict(list)
    stats = {"cycles": 0, "sent": 0, "received": 0, "nacks": 0, "last_send": 0, "last_receive": 0}
    staged: dict[int, list[int]] = defaultdict(list)
    opened: dict[int, tuple[Message, list[int]]] = {}

    async def testbench(ctx) -> None:
        for index in range(len(addresses)):
            ctx.set(network.permissions[index].we, 1)
            ctx.set(network.permissions[index].data, -1)
        await ctx.tick()
        model.step()
        for index in range(len(addresses)):
            ctx.set(network.permissions[index].we, 0)
        cycle = 0
        while True:
            counts = [ctx.get(unit.mailbox.count) for unit in network.units]
            # Drive this cycle's inputs.
            for index, driver in enumerate(drivers):
                port = network.cores[index]
                if driver.current is None:
                    if driver.idle:
                        driver.idle -= 1
                    else:
                        driver.current = driver.next_instruction(counts[index])
                if driver.current is None:
                    ctx.set(port.valid, 0)
                    continue
                op, rs1, rs2 = driver.current
                ctx.set(port.valid, 1)
                ctx.set(port.funct3, op.funct3)
                ctx.set(port.funct7, op.funct7)
                ctx.set(port.rs1, rs1)
                ctx.set(port.rs2, rs2)
            # Compare the state with the model, then replay this cycle's completed instructions into it.
            for index, address in enumerate(addresses):
                assert counts[index] == model.node(address).count, (
                    f"cycle {cycle}: node {address} mailbox count {counts[index]}, model {model.node(address).count}"
                )
            for index, (address, driver) in enumerate(zip(addresses, drivers)):
                port = network.cores[index]
                if driver.current is None or not ctx.get(port.ready):
                    continue
                op, rs1, rs2 = driver.current
                result, fault = ctx.get(port.result), ctx.get(port.fault)
                assert not fault, f"cycle {cycle}: node {address} {op.name} faulted with cause {ctx.get(port.cause)}"
                node = model.node(address)
                if op == MessageOp.STATUS:
                    if result & 1:  # a message is still in flight: drop the planned send, try later
                        assert node.send_busy
                        driver.plan.clear()
                    else:
                        assert not node.send_busy
                elif op == MessageOp.PUT:
                    staged[address].append(rs1)
                elif op in (MessageOp.SEND, MessageOp.TRYSEND):
                    assert result == (0 if node.send_busy else 1), f"cycle {cycle}: {op.name} gave {result}"
                    if result:
                        message = Message(address, rs1, rs2, tuple(staged.pop(address)))
                        model.send(address, message)
                        sent_log[address, rs1].append(message)
                        driver.seq_to[rs1] += 1
                        driver.sent += 1
                        stats["sent"] += 1
                        stats["last_send"] = cycle
                elif op in (MessageOp.RECV, MessageOp.TRYRECV, MessageOp.RECVT):
                    if result:
                        message = model.open(address)
                        assert result == message.header_word, f"cycle {cycle}: header {result:#x} vs {message}"
                        opened[address] = (message, list(message.words))
                        received_log[message.src, address].append(message)
                        driver.unread = len(message.words)
                        stats["received"] += 1
                        stats["last_receive"] = cycle
                    else:
                        assert node.count == 0, f"cycle {cycle}: {op.name} found no message, model has {node.count}"
                elif op == MessageOp.GET:
                    expected = opened[address][1].pop(0)
                    assert result == expected, f"cycle {cycle}: GET {result:#x}, expected {expected:#x}"
                    driver.unread -= 1
                elif op == MessageOp.COUNT:
                    assert result == node.count
                driver.current = None
                driver.idle = 1
            model.step()
            await ctx.tick()
            cycle += 1
            if all(d.sent == quota for d in drivers) and stats["received"] == stats["sent"] and model.idle():
                break
            assert cycle - stats["last_send"] < DRAIN_BOUND or stats["received"] == stats["sent"], (
                f"traffic did not drain within {DRAIN_BOUND} cycles of the last send: {stats}; "
                f"model: {[(a, n.count, n.entries_used, n.outbound, n.pending, n.retry_wait) for a, n in model.nodes.items()]}"
                f"; drivers: {[(d.current, d.plan, d.unread, d.stall, d.sent) for d in drivers]}"
            )
        stats["cycles"] = cycle

    simulator = Simulator(network)
    simulator.add_clock(1e-6)
    simulator.add_testbench(testbench)
    simulator.run()
    stats["nacks"] = model.nacks
    # Scoreboard: per (sender, receiver), the received messages are exactly the sent ones, in order.
    for pair in set(sent_log) | set(received_log):
        assert received_log[pair] == sent_log[pair], f"pair {pair}: sent {sent_log[pair]}, received {received_log[pair]}"
    return stats


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_traffic_matches_model_and_drains(seed: int, separate_staging: bool) -> None:
    stats = run_stress(seed, separate_staging=separate_staging)
    assert stats["sent"] == QUOTA * (NUM_TILES + 1)
    assert stats["received"] == stats["sent"]
    assert stats["nacks"] > 0, "the hoarding node never filled its mailbox: the test lost its point"


@pytest.mark.slow
@pytest.mark.parametrize("retry_delay", [8, 19, 32])
def test_retry_timing_matches_model_for_any_retry_delay(retry_delay: int, separate_staging: bool) -> None:
    # The unit counts the retry wait in slots (a NACK arrives on a slot's first flit); the model counts cycles. The
    # mailbox counts, compared on every cycle, show that both retry on the same slot: 8 = the next slot, 19 and 32 =
    # two and three slots later (the default).
    stats = run_stress(7, retry_delay=retry_delay, quota=8, separate_staging=separate_staging)
    assert stats["received"] == stats["sent"] == 8 * (NUM_TILES + 1)
    assert stats["nacks"] > 0

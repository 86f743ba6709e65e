"""The network reference model on its own: protocol properties over long random runs, and its input checks."""

from __future__ import annotations

import random
from collections import defaultdict

import pytest

from tessera.hw.noc_layouts import HOST_NODE, ring_length
from tessera.sim.noc_model import Message, NocModel


def test_ring_is_padded_to_whole_slots() -> None:
    assert ring_length(9) == 10 and ring_length(17) == 20 and ring_length(65) == 70


def test_neighbour_delivery_takes_one_hop_per_cycle() -> None:
    arrivals = {}
    for dest in (1, 2):
        model = NocModel(3)
        model.send(0, Message(0, dest, 0, (1,)))
        while not model.node(dest).count:
            model.step()
        arrivals[dest] = model.cycle
    assert arrivals[2] - arrivals[1] == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_traffic_with_a_hoarder_is_exactly_once_in_order_and_drains(seed: int) -> None:
    rng = random.Random(seed)
    model = NocModel(8, depth=2, retry_delay=16)
    hoarder = 3
    sent: dict[tuple[int, int], list[Message]] = defaultdict(list)
    received: dict[tuple[int, int], list[Message]] = defaultdict(list)
    total = 0
    for cycle in range(60_000):
        sending = cycle < 40_000
        for address, node in model.nodes.items():
            if sending and node.outbound is None and rng.random() < 0.05:
                dest = rng.choice(model.addresses)
                message = Message(address, dest, len(sent[address, dest]) & 0xFFFF, (rng.getrandbits(32),))
                model.send(address, message)
                sent[address, dest].append(message)
                total += 1
            hoarding = address == hoarder and sending and (cycle // 5000) % 2 == 0
            if node.queue and not hoarding and rng.random() < 0.2:
                message = model.open(address)
                received[message.src, address].append(message)
        model.step()
    assert model.idle()
    assert model.nacks > 0
    assert total > 1000
    assert dict(received) == {pair: messages for pair, messages in sent.items() if messages}


def test_model_rejects_protocol_misuse() -> None:
    model = NocModel(2)
    with pytest.raises(ValueError, match="empty mailbox"):
        model.open(1)
    with pytest.raises(ValueError, match="not a node"):
        model.set_permissions(0, [5])
    with pytest.raises(ValueError, match="1..4 words"):
        Message(0, 1, 0, ())
    model.send(0, Message(0, HOST_NODE, 0, (1,)))
    model.step()
    with pytest.raises(ValueError, match="in flight"):
        model.send(0, Message(0, 1, 0, (1,)))

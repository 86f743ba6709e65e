"""IoNode on a three-stop ring (a tile, the node, the host) against IoNodeModel: the testbench plays the tile's
core and the host's bridge on their message units."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from tessera.hw.io_node import IoNode, IoTag, debounce_bits, default_debounce_cycles
from tessera.hw.message_unit import MessageUnit
from tessera.hw.network import connect_ring, phase_at_reset
from tessera.hw.noc_layouts import HOST_NODE, MessageOp, MessageStatus, ReceivedHeader, RouteHeader, SlotKind
from tessera.sim.io_node_model import IoNodeModel

TILE, IO, HOST = 0, 1, HOST_NODE
UNIT_TILES = 2  # the tile and the node, as the chip top counts them
LEDS, BUTTONS = 3, 2
DEBOUNCE = 4
MAILBOX_DEPTH = 2
TIMEOUT = 3000


def build_ring() -> tuple[Module, dict[int, MessageUnit], IoNode]:
    m = Module()
    units = {
        address: MessageUnit(address=address, num_tiles=UNIT_TILES, phase_at_reset=phase_at_reset(position),
                             depth=MAILBOX_DEPTH)
        for address, position in ((TILE, 0), (HOST, 2))
    }
    node = IoNode(address=IO, phase_at_reset=phase_at_reset(1), led_count=LEDS, button_count=BUTTONS)
    m.submodules.tile, m.submodules.io, m.submodules.host = units[TILE], node, units[HOST]
    cycle = Signal(8)  # the chip's cycle counter, as far as the debounce samples need it
    m.d.sync += cycle.eq(cycle + 1)
    m.d.comb += node.sample.eq(cycle[: debounce_bits(DEBOUNCE)].all())
    connect_ring(m, [units[TILE], node, units[HOST]])
    for unit in units.values():
        m.d.comb += [unit.permissions.we.eq(1), unit.permissions.data.eq(-1)]
    return m, units, node


@dataclass
class Bench:
    """The two message units' cores, driven one instruction at a time, and the model kept in step."""

    units: dict[int, MessageUnit]
    node: IoNode
    model: IoNodeModel = field(default_factory=lambda: IoNodeModel(led_count=LEDS, button_count=BUTTONS))
    events: list[tuple[int, int]] = field(default_factory=list)  # (receiver, word) of every event checked

    async def execute(self, ctx, at: int, op: MessageOp, rs1: int = 0, rs2: int = 0) -> int:
        core = self.units[at].core
        ctx.set(core.valid, 1)
        ctx.set(core.funct3, op.funct3)
        ctx.set(core.funct7, op.funct7)
        ctx.set(core.rs1, rs1)
        ctx.set(core.rs2, rs2)
        for _ in range(TIMEOUT):
            if ctx.get(core.ready):
                assert not ctx.get(core.fault), f"{op.name} faulted with cause {ctx.get(core.cause)}"
                result = ctx.get(core.result)
                await ctx.tick()
                ctx.set(core.valid, 0)
                await ctx.tick()
                return result
            await ctx.tick()
        raise AssertionError(f"{op.name} on node {at} never completed")

    async def send(self, ctx, src: int, dest: int, tag: IoTag | int, words: list[int]) -> None:
        for word in words:
            await self.execute(ctx, src, MessageOp.PUT, word)
        await self.execute(ctx, src, MessageOp.SEND, dest, int(tag))
        if dest == IO:
            # until the ACK: the node has acted on the message, so what the testbench does next comes after it
            while MessageStatus.from_bits(await self.execute(ctx, src, MessageOp.STATUS)).send_busy:
                pass
            self.model.deliver(src, int(tag), words)

    async def settle(self, ctx, cycles: int = 200) -> None:
        await ctx.tick().repeat(cycles)

    async def press(self, ctx, levels: int) -> None:
        ctx.set(self.node.buttons, levels)
        self.model.set_buttons(levels)
        await self.settle(ctx, 4 * DEBOUNCE + 4)

    async def receive(self, ctx, at: int) -> tuple[ReceivedHeader, list[int]]:
        header = ReceivedHeader.from_bits(await self.execute(ctx, at, MessageOp.RECV))
        return header, [await self.execute(ctx, at, MessageOp.GET) for _ in range(header.len)]

    async def expect_event(self, ctx) -> None:
        """The model's next event (if any) reaches its receiver; none reaches anyone when the model has none."""
        expected = self.model.take_event()
        if expected is None:
            await self.settle(ctx)
            for at in self.units:
                assert await self.execute(ctx, at, MessageOp.TRYRECV) == 0, "a message came though the model sends none"
            return
        dest, tag, word = expected
        header, words = await self.receive(ctx, dest)
        assert (header.src, header.tag, words) == (IO, tag, [word])
        self.events.append((dest, word))

    async def expect_leds(self, ctx) -> None:
        await self.settle(ctx)
        assert ctx.get(self.node.leds) == self.model.leds


def run(testbench) -> Bench:
    m, units, node = build_ring()
    bench = Bench(units, node)
    nacks_by_node: list[int] = []

    async def watch_answers(ctx) -> None:
        """The node always has room: it never answers NACK (only ACK/NACK slots carry a kind other than EMPTY/DATA
        after reset, and only on a slot's first flit, so the route header is there)."""
        async for ring_out in ctx.tick().sample(node.ring_out):
            flit = ring_out[-1]
            if flit.kind == SlotKind.NACK and RouteHeader.from_bits(flit.data).dest == IO:
                nacks_by_node.append(1)

    async def play(ctx) -> None:
        await testbench(ctx, bench)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(watch_answers, background=True)
    sim.add_testbench(play)
    sim.run()
    assert not nacks_by_node, "the I/O node answered a message with NACK"
    return bench


def test_leds_subscription_and_button_events_follow_the_model() -> None:
    async def testbench(ctx, bench: Bench) -> None:
        await bench.send(ctx, TILE, IO, IoTag.SET_LEDS, [0b101])
        await bench.expect_leds(ctx)
        await bench.send(ctx, HOST, IO, IoTag.SET_LEDS, [0xFFFF_FF02, 0x1234_5678])
        await bench.expect_leds(ctx)
        await bench.send(ctx, TILE, IO, 9, [0b111])  # an unknown tag is dropped
        await bench.send(ctx, TILE, IO, 0x0101, [0b111])  # so is one whose low bits alone say SET_LEDS
        await bench.expect_leds(ctx)
        await bench.press(ctx, 0b01)  # nobody subscribed: the press stays pending
        await bench.press(ctx, 0b00)
        await bench.expect_event(ctx)
        await bench.send(ctx, TILE, IO, IoTag.SUBSCRIBE, [0])
        await bench.expect_event(ctx)
        await bench.press(ctx, 0b10)
        await bench.expect_event(ctx)
        await bench.press(ctx, 0b11)
        await bench.expect_event(ctx)
        await bench.send(ctx, HOST, IO, IoTag.SUBSCRIBE, [7, 7, 7, 7])  # the host takes over
        await bench.press(ctx, 0b00)
        await bench.press(ctx, 0b01)
        await bench.expect_event(ctx)
        await bench.send(ctx, HOST, IO, IoTag.UNSUBSCRIBE, [0])
        await bench.press(ctx, 0b11)
        await bench.expect_event(ctx)
        await bench.send(ctx, TILE, IO, IoTag.SET_LEDS, [0b011])
        await bench.expect_leds(ctx)

    bench = run(testbench)
    assert [dest for dest, _ in bench.events] == [TILE, TILE, TILE, HOST]


def test_event_waits_in_flight_for_a_full_subscriber_and_keeps_its_receiver() -> None:
    """The subscriber's mailbox is full: the node's event is NACKed and offered again until the subscriber makes
    room, and it still goes there when another node has subscribed in between; the next event goes to that one."""

    async def testbench(ctx, bench: Bench) -> None:
        await bench.send(ctx, TILE, IO, IoTag.SUBSCRIBE, [0])
        for word in range(MAILBOX_DEPTH):
            await bench.send(ctx, HOST, TILE, 5, [word])
        await bench.press(ctx, 0b10)
        staged = bench.model.take_event()  # the event is staged now, for the tile
        await bench.settle(ctx, 500)  # many retries
        await bench.send(ctx, HOST, IO, IoTag.SUBSCRIBE, [0])
        await bench.press(ctx, 0b11)  # a press while the event waits: pending for the next one
        for word in range(MAILBOX_DEPTH):
            header, words = await bench.receive(ctx, TILE)
            assert (header.src, words) == (HOST, [word])
        header, words = await bench.receive(ctx, TILE)
        assert staged is not None and (header.src, header.tag, words) == (IO, staged[1], [staged[2]])
        await bench.expect_event(ctx)

    bench = run(testbench)
    assert [dest for dest, _ in bench.events] == [HOST]



def test_debounce_interval_is_a_power_of_two_near_5_ms() -> None:
    """The chip times the samples with its counter's low bits: the default interval is the power of two nearest to
    5 ms, and any other interval is refused with its value named."""
    assert default_debounce_cycles(24_000_000) == 1 << 17  # 120 000 cycles rounded: 5.46 ms
    assert default_debounce_cycles(12_000_000) == 1 << 16
    assert default_debounce_cycles(1) == 1
    assert [debounce_bits(cycles) for cycles in (1, 2, 4, 1 << 17)] == [0, 1, 2, 17]
    for wrong in (0, 3, 120_000):
        with pytest.raises(ValueError, match=f"debounce interval {wrong}: expected a power of two"):
            debounce_bits(wrong)

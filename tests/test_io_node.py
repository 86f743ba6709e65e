"""IoNode on a two-stop ring against IoNodeModel: a testbench plays a tile's core on the other stop."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from tessera.hw.io_node import IoNode, IoTag
from tessera.hw.message_unit import MessageUnit
from tessera.hw.network import phase_at_reset
from tessera.hw.noc_layouts import Flit, MessageOp, ReceivedHeader, ring_length
from tessera.sim.io_node_model import IoNodeModel

TILE, IO = 0, 1
NODES = 2
LEDS, BUTTONS = 3, 2
DEBOUNCE = 4
TIMEOUT = 3000


def build_ring() -> tuple[Module, MessageUnit, IoNode]:
    m = Module()
    tile = MessageUnit(address=TILE, num_tiles=NODES, phase_at_reset=phase_at_reset(0))
    node = IoNode(
        address=IO, num_tiles=NODES, phase_at_reset=phase_at_reset(1),
        led_count=LEDS, button_count=BUTTONS, debounce_cycles=DEBOUNCE,
    )
    m.submodules.tile, m.submodules.io = tile, node
    outputs = [tile.ring_out, node.ring_out]
    for pad in range(ring_length(NODES) - NODES):
        register = Signal(Flit, name=f"pad{pad}")
        m.d.sync += register.eq(outputs[-1])
        outputs.append(register)
    m.d.comb += [tile.ring_in.eq(outputs[-1]), node.ring_in.eq(outputs[0])]
    m.d.comb += [tile.permissions.we.eq(1), tile.permissions.data.eq(-1)]
    return m, tile, node


def test_leds_subscription_and_button_events_follow_the_model() -> None:
    m, tile, node = build_ring()
    core = tile.core
    model = IoNodeModel(led_count=LEDS, button_count=BUTTONS)
    checked: list[str] = []

    async def execute(ctx, op: MessageOp, rs1: int = 0, rs2: int = 0) -> int:
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
        raise AssertionError(f"{op.name} never completed")

    async def send(ctx, tag: IoTag | int, words: list[int]) -> None:
        for word in words:
            await execute(ctx, MessageOp.PUT, word)
        await execute(ctx, MessageOp.SEND, IO, int(tag))
        model.deliver(TILE, int(tag), words)

    async def settle(ctx, cycles: int = 200) -> None:
        await ctx.tick().repeat(cycles)

    async def press(ctx, levels: int) -> None:
        ctx.set(node.buttons, levels)
        model.set_buttons(levels)
        await settle(ctx, 4 * DEBOUNCE + 4)

    async def expect_event(ctx) -> None:
        expected = model.take_event()
        if expected is None:
            await settle(ctx)
            assert await execute(ctx, MessageOp.TRYRECV) == 0, "a message arrived though the model sends none"
            return
        dest, tag, word = expected
        assert dest == TILE
        header = await execute(ctx, MessageOp.RECV)
        fields = ReceivedHeader.from_bits(header)
        assert (fields.src, fields.tag, fields.len) == (IO, tag, 1)
        assert await execute(ctx, MessageOp.GET) == word
        checked.append(f"event {word:#06x}")

    async def expect_leds(ctx) -> None:
        await settle(ctx)
        assert ctx.get(node.leds) == model.leds
        checked.append(f"leds {model.leds:#05b}")

    async def testbench(ctx) -> None:
        await send(ctx, IoTag.SET_LEDS, [0b101])
        await expect_leds(ctx)
        await send(ctx, IoTag.SET_LEDS, [0xFFFF_FF02])
        await expect_leds(ctx)
        await send(ctx, 9, [0b111])  # an unknown tag is dropped
        await expect_leds(ctx)
        await press(ctx, 0b01)  # nobody subscribed: the press stays pending
        await press(ctx, 0b00)
        await expect_event(ctx)
        await send(ctx, IoTag.SUBSCRIBE, [0])
        await expect_event(ctx)
        await press(ctx, 0b10)
        await expect_event(ctx)
        await press(ctx, 0b11)
        await expect_event(ctx)
        await send(ctx, IoTag.UNSUBSCRIBE, [0])
        await press(ctx, 0b00)
        await press(ctx, 0b01)
        await expect_event(ctx)
        await send(ctx, IoTag.SET_LEDS, [0b011])
        await expect_leds(ctx)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    assert len([c for c in checked if c.startswith("event")]) == 3

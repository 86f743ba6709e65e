"""The board's LEDs and buttons as a network node: an LED service and a button service behind one address.

The node joins the ring like a tile (`ring_in`/`ring_out` go where a tile's message unit would be) and answers to
its own node address, but it has no mailbox and no core: its ring stop (`IoRingPort`) hands it each message as the
flits pass, the node acts on it at once (so it always answers ACK), and it sends its button events from a few
registers. It sends only to its subscriber, a node that wrote to it first, so it needs no permission set.

Protocol (tags of messages to and from the node; `IoTag`):
- SET_LEDS: LED i := bit i of payload word 0 (1 = lit; every message carries at least one word).
- SUBSCRIBE (no payload needed): the message's sender becomes the button subscriber (replacing any earlier one).
- UNSUBSCRIBE: nobody is subscribed any more; presses are still collected until someone subscribes.
- BUTTON_EVENT (sent by the node to the subscriber), 1 word, `ButtonEvent`: `pressed` = buttons pressed (debounced
  rising edges) since the last event, `held` = the debounced levels when the event was staged.
Any other tag is dropped. Presses are never lost while nobody listens: they stay pending (one bit per button)
until an event carries them. One event is in flight at a time: it goes to the subscriber of the moment it was
staged, and is offered again after a NACK until that node takes it.

Placement (hw/chip.py does it when the chip has LEDs or buttons): the node takes the address right after the
tiles (`io_address`), and every MessageUnit on the chip is built with num_tiles = tile_count + 1, so the node
is "tile" tile_count to them. The host writes a tile's PERMISSIONS in its own layout
(bit tile_count = the host, bit tile_count + 1 = this node, `io_permission_bit`), which the chip top translates;
so a tile reaches the I/O services only when its permissions allow it, like any other service. The node's ring
position is any stop (phase_at_reset as for a tile there).
"""

from __future__ import annotations

import math

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from tessera.hw.io_ring_port import IoRingPort
from tessera.hw.noc_layouts import NODE_BITS, Flit, RouteHeader

#: Most LEDs/buttons one node serves (one bit each in a payload byte).
MAX_PINS = 8
#: Button debounce interval when the chip top is not told otherwise: about 5 ms of clock.
DEBOUNCE_S = 0.005


def io_address(tiles: int) -> int:
    """The node's network address on a chip with `tiles` tiles: right after the tiles."""
    return tiles


def io_permission_bit(tiles: int) -> int:
    """The bit of a tile's host-side permission set (PERMISSIONS register, image) that allows sends to the node.

    Bits 0..tiles-1 are the tiles and bit `tiles` the host, as on a chip without the node; the node adds the bit
    above them, so images built without I/O services mean the same on either chip."""
    return tiles + 1


def default_debounce_cycles(clock_hz: int) -> int:
    """About DEBOUNCE_S of `clock_hz`: the power of two nearest to it (in the ratio sense), as `debounce_bits` needs."""
    return 1 << round(math.log2(max(1.0, clock_hz * DEBOUNCE_S)))


def debounce_bits(debounce_cycles: int) -> int:
    """log2 of the debounce interval `debounce_cycles`, which must be a power of two: the chip top pulses the node's
    `sample` whenever that many low bits of its cycle counter are all ones (so no timer of its own: the samples fall
    where a timer counting modulo `debounce_cycles` from 0 at reset would take them, at its last count)."""
    if debounce_cycles < 1 or debounce_cycles & (debounce_cycles - 1):
        raise ValueError(f"debounce interval {debounce_cycles}: expected a power of two cycles")
    return debounce_cycles.bit_length() - 1


def press_hold_cycles(debounce_cycles: int) -> int:
    """Cycles a button level must be held to count: two samples `debounce_cycles` apart must both see it, after the
    2-flop synchroniser; one more interval of margin for where the change falls between samples."""
    return 3 * debounce_cycles + 4


class IoTag(enum.IntEnum):
    SET_LEDS = 1
    SUBSCRIBE = 2
    UNSUBSCRIBE = 3
    BUTTON_EVENT = 4


ButtonEvent = data.StructLayout({"pressed": MAX_PINS, "held": MAX_PINS})


class IoNode(wiring.Component):
    """LEDs and buttons at node `address` (see the module docstring for the protocol and placement).

    `sample` (In): one-cycle pulses, one every debounce interval (the chip top derives them from its cycle counter,
    `debounce_bits`): a button level counts only after two successive samples saw it.
    `retry_slots`: slots the node waits after a NACK from the subscriber before it offers the event again.
    """

    def __init__(
        self,
        *,
        address: int,
        phase_at_reset: int,
        led_count: int,
        button_count: int,
        retry_slots: int = 3,
    ) -> None:
        for name, count in (("LED", led_count), ("button", button_count)):
            if not 0 <= count <= MAX_PINS:
                raise ValueError(f"{name} count {count} outside 0..{MAX_PINS}")
        self._address = address
        self._led_count = led_count
        self._button_count = button_count
        super().__init__(
            {
                "ring_in": In(Flit),
                "ring_out": Out(Flit),
                "leds": Out(max(1, led_count)),
                "buttons": In(max(1, button_count)),
                "sample": In(1),
            }
        )
        #: The node's ring stop (public so that tests can watch it).
        self.port = IoRingPort(address=address, phase_at_reset=phase_at_reset, retry_slots=retry_slots)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.port = port = self.port
        m.d.comb += [port.ring_in.eq(self.ring_in), self.ring_out.eq(port.ring_out)]

        # Buttons: synchronised, sampled at each `sample` pulse, pressed = debounced rising edge.
        buttons = max(1, self._button_count)
        held = Signal(buttons)
        pending = Signal(buttons)
        pressed_now = Signal(buttons)
        if self._button_count:
            raw = Signal(buttons)
            m.submodules.sync_buttons = FFSynchronizer(self.buttons, raw)
            last_sample = Signal(buttons)
            with m.If(self.sample):
                m.d.sync += last_sample.eq(raw)
                stable = ~(raw ^ last_sample)
                new_held = (held & ~stable) | (raw & stable)
                m.d.sync += held.eq(new_held)
                m.d.comb += pressed_now.eq(new_held & ~held)

        # Messages to the node act as their flits pass.
        leds = Signal(max(1, self._led_count))
        if self._led_count:
            m.d.comb += self.leds.eq(leds)
        subscribed = Signal()
        subscriber = Signal(NODE_BITS)
        leds_follow = Signal()  # a SET_LEDS message's low payload half is on `port.low_half` now
        arrival = port.arrival
        m.d.sync += leds_follow.eq(arrival.valid & (arrival.payload.tag == IoTag.SET_LEDS))
        with m.If(leds_follow):
            m.d.sync += leds.eq(port.low_half)
        with m.If(arrival.valid):
            with m.Switch(arrival.payload.tag):
                with m.Case(IoTag.SUBSCRIBE):
                    m.d.sync += [subscribed.eq(1), subscriber.eq(arrival.payload.src)]
                with m.Case(IoTag.UNSUBSCRIBE):
                    m.d.sync += subscribed.eq(0)

        # The button event: taken from `pending` when it is staged (presses after that wait for the next event) and
        # addressed to the subscriber of that moment, then held until the subscriber's ACK.
        outbound = port.outbound
        dest = Signal(NODE_BITS)
        event = Signal(ButtonEvent)
        stage = subscribed & (pending != 0) & ~outbound.request
        with m.If(stage):
            m.d.sync += [
                outbound.request.eq(1),
                dest.eq(subscriber),
                event.pressed.eq(pending),
                event.held.eq(held),
            ]
        with m.If(outbound.delivered):
            m.d.sync += outbound.request.eq(0)
        m.d.sync += pending.eq(Mux(stage, 0, pending) | pressed_now)

        route = Signal(RouteHeader)
        m.d.comb += [route.dest.eq(dest), route.src.eq(self._address), route.len_m1.eq(0)]
        with m.Switch(outbound.index):
            with m.Case(0):
                m.d.comb += outbound.flit.eq(route)
            with m.Case(1):
                m.d.comb += outbound.flit.eq(IoTag.BUTTON_EVENT)
            with m.Case(2):
                m.d.comb += outbound.flit.eq(event)
        return m

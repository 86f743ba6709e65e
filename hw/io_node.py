"""The board's LEDs and buttons as a network node: an LED service and a button service behind one address.

The node is a MessageUnit (the same ring stop, mailbox and permission logic a tile has) driven by a small state
machine in place of a core, so it joins the ring exactly like a tile: `ring_in`/`ring_out` go where a tile's
message unit would be, and it answers to its own node address.

Protocol (tags of messages to and from the node; `IoTag`):
- SET_LEDS, 1 payload word: LED i := bit i of the word (1 = lit). A SET_LEDS without payload is ignored.
- SUBSCRIBE (no payload needed): the message's sender becomes the button subscriber (replacing any earlier one).
- UNSUBSCRIBE: nobody is subscribed any more; presses are still collected until someone subscribes.
- BUTTON_EVENT (sent by the node to the subscriber), 1 word, `ButtonEvent`: `pressed` = buttons pressed (debounced
  rising edges) since the last event, `held` = the debounced levels when the event was staged.
Any other tag is read and dropped. Presses are never lost while nobody listens: they stay pending (one bit per
button) until an event carries them.

Placement (hw/chip.py does it when the chip has LEDs or buttons): the node takes the address right after the
tiles (`io_address`), and every MessageUnit on the chip, this node's included, is built with num_tiles =
tile_count + 1, so the node is "tile" tile_count to them. The host writes a tile's PERMISSIONS in its own layout
(bit tile_count = the host, bit tile_count + 1 = this node, `io_permission_bit`), which the chip top translates;
so a tile reaches the I/O services only when its permissions allow it, like any other service. The node's ring
position is any stop (phase_at_reset as for a tile there).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from tessera.hw.message_unit import MessageUnit
from tessera.hw.noc_layouts import NODE_BITS, Flit, MessageOp, ReceivedHeader

#: Most LEDs/buttons one node serves (one bit each in a payload byte).
MAX_PINS = 8
#: Button debounce interval when the chip top is not told otherwise: 5 ms of clock.
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
    return max(1, round(clock_hz * DEBOUNCE_S))


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

    `debounce_cycles`: a button level counts only after it was the same at two samples this many cycles apart.
    """

    def __init__(
        self,
        *,
        address: int,
        num_tiles: int,
        phase_at_reset: int,
        led_count: int,
        button_count: int,
        debounce_cycles: int,
        mailbox_depth: int = 2,
    ) -> None:
        for name, count in (("LED", led_count), ("button", button_count)):
            if not 0 <= count <= MAX_PINS:
                raise ValueError(f"{name} count {count} outside 0..{MAX_PINS}")
        if debounce_cycles < 1:
            raise ValueError(f"debounce interval {debounce_cycles} must be at least one cycle")
        self._address = address
        self._num_tiles = num_tiles
        self._debounce_cycles = debounce_cycles
        self._led_count = led_count
        self._button_count = button_count
        super().__init__(
            {
                "ring_in": In(Flit),
                "ring_out": Out(Flit),
                "leds": Out(max(1, led_count)),
                "buttons": In(max(1, button_count)),
            }
        )
        #: The node's message unit (public so that tests can watch it).
        self.unit = MessageUnit(
            address=address, num_tiles=num_tiles, phase_at_reset=phase_at_reset, depth=mailbox_depth
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.unit = unit = self.unit
        port = unit.core
        m.d.comb += [
            unit.ring_in.eq(self.ring_in),
            self.ring_out.eq(unit.ring_out),
            # The node may answer anyone: it only ever sends to the subscriber, who wrote to it first.
            unit.permissions.we.eq(1),
            unit.permissions.data.eq(-1),
        ]

        # Buttons: synchronised, sampled every debounce_cycles, pressed = debounced rising edge.
        synced = Signal(len(self.buttons))
        raw = Signal(MAX_PINS)
        held = Signal(MAX_PINS)
        pending = Signal(MAX_PINS)
        pressed_now = Signal(MAX_PINS)
        m.submodules.sync_buttons = FFSynchronizer(self.buttons, synced)
        m.d.comb += raw.eq(synced & ((1 << self._button_count) - 1))
        sample_timer = Signal(range(self._debounce_cycles))
        last_sample = Signal(MAX_PINS)
        with m.If(sample_timer == self._debounce_cycles - 1):
            m.d.sync += [sample_timer.eq(0), last_sample.eq(raw)]
            stable = ~(raw ^ last_sample)
            new_held = (held & ~stable) | (raw & stable)
            m.d.sync += held.eq(new_held)
            m.d.comb += pressed_now.eq(new_held & ~held)
        with m.Else():
            m.d.sync += sample_timer.eq(sample_timer + 1)

        leds = Signal(MAX_PINS)
        m.d.comb += self.leds.eq(leds[: max(1, self._led_count)])
        subscribed = Signal()
        subscriber = Signal(NODE_BITS)
        event = Signal(ButtonEvent)
        taken = Signal(MAX_PINS)  # presses carried by the event being sent

        def issue(op: MessageOp, rs1=0, rs2=0) -> None:
            m.d.comb += [
                port.valid.eq(1),
                port.funct3.eq(op.funct3),
                port.funct7.eq(op.funct7),
                port.rs1.eq(rs1),
                port.rs2.eq(rs2),
            ]

        with m.FSM(name="service"):
            with m.State("POLL"):
                issue(MessageOp.TRYRECV)
                with m.If(port.ready):
                    received = ReceivedHeader(port.result)
                    with m.If(port.result == 0):
                        with m.If(subscribed & (pending != 0)):
                            m.d.sync += [event.pressed.eq(pending), event.held.eq(held), taken.eq(pending)]
                            m.next = "STAGE_EVENT"
                    with m.Elif(received.tag == IoTag.SUBSCRIBE):
                        m.d.sync += [subscribed.eq(1), subscriber.eq(received.src)]
                    with m.Elif(received.tag == IoTag.UNSUBSCRIBE):
                        m.d.sync += subscribed.eq(0)
                    with m.Elif(received.tag == IoTag.SET_LEDS):
                        m.next = "READ_LEDS"
            with m.State("READ_LEDS"):
                issue(MessageOp.GET)
                with m.If(port.ready):
                    with m.If(~port.fault):
                        m.d.sync += leds.eq(port.result)
                    m.next = "POLL"
            with m.State("STAGE_EVENT"):
                issue(MessageOp.PUT, rs1=event.as_value())
                with m.If(port.ready):
                    m.next = "SEND_EVENT"
            with m.State("SEND_EVENT"):
                issue(MessageOp.SEND, rs1=subscriber, rs2=IoTag.BUTTON_EVENT)
                with m.If(port.ready):
                    m.next = "POLL"

        # A press that lands while its bit is being sent stays pending for the next event.
        clear = Signal(MAX_PINS)
        with m.If(port.ready & (port.funct3 == MessageOp.SEND.funct3) & ~port.fault):
            m.d.comb += clear.eq(taken)
        m.d.sync += pending.eq((pending & ~clear) | pressed_now)
        return m

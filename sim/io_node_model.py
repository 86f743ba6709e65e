"""Reference model of hw/io_node.py's IoNode at the message level (debounced button levels, whole messages)."""

from __future__ import annotations

from dataclasses import dataclass

from tessera.hw.io_node import MAX_PINS, IoTag


@dataclass
class IoNodeModel:
    led_count: int
    button_count: int
    leds: int = 0
    subscriber: int | None = None
    pending: int = 0
    held: int = 0

    def deliver(self, src: int, tag: int, words: list[int]) -> None:
        """A message from node `src` reached the node."""
        if tag == IoTag.SUBSCRIBE:
            self.subscriber = src
        elif tag == IoTag.UNSUBSCRIBE:
            self.subscriber = None
        elif tag == IoTag.SET_LEDS and words:
            self.leds = words[0] & ((1 << self.led_count) - 1)

    def set_buttons(self, levels: int) -> None:
        """The debounced button levels became `levels` (bit i = button i down)."""
        levels &= (1 << self.button_count) - 1
        self.pending |= levels & ~self.held
        self.held = levels

    def take_event(self) -> tuple[int, int, int] | None:
        """The next message the node stages, as (dest, tag, word), or None. Its receiver is fixed here: the event
        goes to that node even if another subscribes while it is in flight."""
        if self.subscriber is None or not self.pending:
            return None
        word = self.pending | (self.held << MAX_PINS)
        self.pending = 0
        return self.subscriber, IoTag.BUTTON_EVENT, word

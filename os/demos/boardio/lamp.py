"""Lamp, the LED service: shows each pattern `fsm` sends (SHOW, word 0 = bit i lights LED i) on the board's
LEDs through the chip's LED service, and counts the updates."""

from tessera.os.service_api import Message, Service, send

SHOW = 1
SET_LEDS = 1  # to the I/O node: LED i := bit i of word 0 (docs/boards.md)


class Lamp(Service):
    shown: int = 0

    def handle(self, msg: Message) -> None:
        assert msg.tag == SHOW, "lamp only takes patterns"
        self.shown += 1
        send("led", msg[0], tag=SET_LEDS)

"""Panel, the button service: subscribes to the chip's button service when it starts, and turns every press a
BUTTON_EVENT reports into one PRESS message (word 0 = the button's number) for `fsm`."""

from tessera.os.service_api import Message, Service, send

SUBSCRIBE = 2  # to the I/O node: the sender receives the button events (docs/boards.md)
BUTTON_EVENT = 4  # from the I/O node: word 0 bits 0..7 = buttons pressed since the last event
PRESS = 1
BUTTONS = 8


class Panel(Service):
    presses: int = 0

    def init(self) -> None:
        send("button", 0, tag=SUBSCRIBE)

    def handle(self, msg: Message) -> None:
        assert msg.tag == BUTTON_EVENT, "panel only takes button events"
        pressed = msg[0] & 0xFF
        for button in range(BUTTONS):
            if pressed >> button & 1:
                self.presses += 1
                send("fsm", button, tag=PRESS)

"""Fsm, the state machine: each PRESS of button 0 steps off -> LED 0 -> LED 1 -> both -> off; a press of any other
button goes straight back to off. Every step sends the new pattern to `lamp` and reports
(state, pattern, presses) to the host with tag STATE."""

from tessera.os.service_api import Array, Message, Service, send

PRESS = 1
SHOW = 1
STATE = 0x10
STATES = 4


class Fsm(Service):
    patterns: Array[int, 4] = [0b00, 0b01, 0b10, 0b11]
    state: int = 0
    presses: int = 0

    def handle(self, msg: Message) -> None:
        assert msg.tag == PRESS, "fsm only takes presses"
        self.presses += 1
        if msg[0] == 0:
            self.state = (self.state + 1) % STATES
        else:
            self.state = 0
        pattern = self.patterns[self.state]
        send("lamp", pattern, tag=SHOW)
        send("host", self.state, pattern, self.presses, tag=STATE)

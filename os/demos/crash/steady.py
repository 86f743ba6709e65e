"""Steady: receives the numbered stream from `pacer` and checks it: every number must be the previous one plus
one. A READ from the host (tag READ) replies (messages received, last number, numbers missing or out of order)."""

from tessera.os.service_api import Message, Service, reply

READ = 2


class Steady(Service):
    received: int = 0
    last: int = 0
    broken: int = 0

    def handle(self, msg: Message) -> None:
        if msg.tag == READ:
            reply(self.received, self.last, self.broken)
            return
        self.received += 1
        if msg[0] != self.last + 1:
            self.broken += 1
        self.last = msg[0]

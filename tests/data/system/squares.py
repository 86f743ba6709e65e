"""Squares (Python): replies with the sum of squares 1..n for n = msg[0], and reports each n to the counter."""

from tessera.os.service_api import Message, Service, reply, send


class Squares(Service):
    requests: int = 0

    def handle(self, msg: Message) -> None:
        self.requests += 1
        total = 0
        for i in range(1, msg[0] + 1):
            total += i * i
        send("counter", msg[0])
        reply(total)

"""Fragile worker: replies (DIVIDEND // msg[0], jobs handled since its last start). Sent 0 it divides by zero,
a fault that stops its tile; the chip reports it DOWN and the supervisor reloads and restarts it."""

from tessera.os.service_api import Message, Service, reply

DIVIDEND = 1_000_000


class Fragile(Service):
    jobs: int = 0

    def handle(self, msg: Message) -> None:
        self.jobs += 1
        reply(DIVIDEND // msg[0], self.jobs)

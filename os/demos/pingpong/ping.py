"""Ping: on a request (msg[0] = rounds) bounces a counter off `pong` that many times, timing every round trip
with the chip's cycle counter. Replies (counter, total cycles, fastest round trip, slowest round trip)."""

from tessera.os.service_api import Message, Service, call, now, reply


class Ping(Service):
    def handle(self, msg: Message) -> None:
        rounds = msg[0]
        assert rounds > 0, "at least one round"
        counter = 0
        fastest = 0x7FFFFFFF
        slowest = 0
        start = now()
        for _ in range(rounds):
            sent_at = now()
            answer = call("pong", counter)
            took = now() - sent_at
            assert answer[0] == counter + 1, "pong must add one"
            counter = answer[0] + 1
            fastest = min(fastest, took)
            slowest = max(slowest, took)
        reply(counter, now() - start, fastest, slowest)

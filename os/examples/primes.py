"""Primes worker: for n = msg[0] (2..LIMIT), replies with how many primes are below n, the largest of them,
and their sum, sieving in a byte string (Eratosthenes)."""

from tessera.os.service_api import Bytes, Message, Service, reply

LIMIT = 400


class Primes(Service):
    composite: Bytes[LIMIT]

    def handle(self, msg: Message) -> None:
        n = msg[0]
        assert 2 <= n <= LIMIT, "n outside 2..LIMIT"
        for i in range(n):
            self.composite[i] = 0
        count = 0
        largest = 0
        total = 0
        for i in range(2, n):
            if self.composite[i]:
                continue
            count += 1
            largest = i
            total += i
            multiple = i * i
            while multiple < n:
                self.composite[multiple] = 1
                multiple += i
        reply(count, largest, total)

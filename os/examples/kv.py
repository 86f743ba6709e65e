"""Key-value store: up to 16 integer keys with integer values.

Requests (msg[0] is the operation): PUT key value -> (1, 0) stored, (0, 0) full; GET key -> (1, value) or
(0, 0); DELETE key -> (1, 0) or (0, 0); COUNT -> (count, 0).
"""

from tessera.os.service_api import Array, Bytes, Message, Service, reply

PUT = 1
GET = 2
DELETE = 3
COUNT = 4
SLOTS = 16


class KeyValue(Service):
    keys: Array[int, SLOTS]
    values: Array[int, SLOTS]
    used: Bytes[SLOTS]
    count: int = 0

    def find(self, key: int, used: int) -> int:
        """The first slot whose used flag is `used` (and, for a used slot, holds key), or -1."""
        for slot in range(SLOTS):
            if self.used[slot] == used and (not used or self.keys[slot] == key):
                return slot
        return -1

    def handle(self, msg: Message) -> None:
        op = msg[0]
        if op == COUNT:
            reply(self.count, 0)
            return
        key = msg[1]
        slot = self.find(key, 1)
        if op == PUT:
            if slot < 0:
                slot = self.find(key, 0)
                if slot < 0:
                    reply(0, 0)
                    return
                self.used[slot] = 1
                self.keys[slot] = key
                self.count += 1
            self.values[slot] = msg[2]
            reply(1, 0)
        elif slot < 0:
            reply(0, 0)
        elif op == GET:
            reply(1, self.values[slot])
        else:
            assert op == DELETE, "unknown operation"
            self.used[slot] = 0
            self.count -= 1
            reply(1, 0)

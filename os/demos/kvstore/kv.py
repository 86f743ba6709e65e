"""Persistent key-value store: SLOTS integer keys with integer values, kept across restarts and chip resets.

Requests (tag = operation): PUT (key, value) -> (1, value) stored or (0, 0) full; GET (key) -> (1, value) or
(0, 0); DELETE (key) -> (1, 0) or (0, 0); COUNT -> (keys stored, 0).

After every change `snapshot()` sends the service's state (its fields) to the host (docs/host-os.md,
"Persistent services"); the compiler knows where the fields are, and the image records it. The host restores the
words into the freshly loaded tile before it runs, so `init` must not touch `table`.
"""

from tessera.os.service_api import Array, Message, Service, reply, snapshot

PUT = 1
GET = 2
DELETE = 3
COUNT = 4
SLOTS = 8


class KeyValue(Service):
    table: Array[int, 3 * SLOTS]  # per slot: used, key, value

    def find(self, key: int) -> int:
        for slot in range(SLOTS):
            if self.table[3 * slot] and self.table[3 * slot + 1] == key:
                return slot
        return -1

    def free_slot(self) -> int:
        for slot in range(SLOTS):
            if not self.table[3 * slot]:
                return slot
        return -1

    def handle(self, msg: Message) -> None:
        op = msg.tag
        if op == COUNT:
            stored = 0
            for slot in range(SLOTS):
                stored += self.table[3 * slot]
            reply(stored, 0)
            return
        slot = self.find(msg[0])
        if op == GET:
            if slot < 0:
                reply(0, 0)
            else:
                reply(1, self.table[3 * slot + 2])
            return
        if op == PUT:
            if slot < 0:
                slot = self.free_slot()
            if slot < 0:
                reply(0, 0)
                return
            self.table[3 * slot] = 1
            self.table[3 * slot + 1] = msg[0]
            self.table[3 * slot + 2] = msg[1]
            snapshot()
            reply(1, msg[1])
            return
        assert op == DELETE, "unknown operation"
        if slot < 0:
            reply(0, 0)
            return
        self.table[3 * slot] = 0
        snapshot()
        reply(1, 0)

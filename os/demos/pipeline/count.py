"""Count: counts word hashes in an open-addressing table of SLOTS entries and sends every new count
(hash, count) to `topk`; END goes on with (words, distinct words) and empties the table for the next text.
More than SLOTS distinct words fault."""

from tessera.os.service_api import Array, Message, Service, send

TEXT = 1
END = 2
SLOTS = 256


class Count(Service):
    hashes: Array[int, SLOTS]
    counts: Array[int, SLOTS]
    distinct: int = 0

    def handle(self, msg: Message) -> None:
        if msg.tag == END:
            send("topk", msg[0], self.distinct, tag=END)
            for slot in range(SLOTS):  # ready for the next text
                self.hashes[slot] = 0
                self.counts[slot] = 0
            self.distinct = 0
            return
        key = msg[0]
        slot = key & (SLOTS - 1)
        probes = 0
        while self.hashes[slot] != key and self.hashes[slot] != 0:
            slot = (slot + 1) & (SLOTS - 1)
            probes += 1
            assert probes < SLOTS, "more distinct words than the table holds"
        if self.hashes[slot] == 0:
            self.hashes[slot] = key
            self.distinct += 1
        self.counts[slot] += 1
        send("topk", key, self.counts[slot], tag=TEXT)

"""Top-k: keeps the K words with the highest counts from the running counts `count` sends (a word's count only
grows by one per update, so swapping it in for the smallest entry keeps the set exact). On END it sends the
host one RESULT message (hash, count) per entry, largest count first, then END (words, distinct words)."""

from tessera.os.service_api import Array, Message, Service, send

TEXT = 1
END = 2
RESULT = 3
K = 5


class TopK(Service):
    hashes: Array[int, K]
    counts: Array[int, K]

    def handle(self, msg: Message) -> None:
        if msg.tag == END:
            self.report()
            send("host", msg[0], msg[1], tag=END)
            return
        key = msg[0]
        smallest = 0
        for slot in range(K):
            if self.hashes[slot] == key:
                self.counts[slot] = msg[1]
                return
            if self.counts[slot] < self.counts[smallest]:
                smallest = slot
        if msg[1] > self.counts[smallest]:
            self.hashes[smallest] = key
            self.counts[smallest] = msg[1]

    def report(self) -> None:
        for _ in range(K):
            best = 0
            for slot in range(K):
                if self.counts[slot] > self.counts[best]:
                    best = slot
            if self.counts[best] > 0:
                send("host", self.hashes[best], self.counts[best], tag=RESULT)
            self.counts[best] = 0
            self.hashes[best] = 0

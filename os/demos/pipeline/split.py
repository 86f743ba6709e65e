"""Split: takes text as messages of up to four words, four bytes each (little-endian, zero bytes only after the
end of the text), cuts it into words of letters (A-Z folded to a-z) and sends each word's hash to `count`.

Tag TEXT carries text; tag END (from the host) ends the text: the last word is flushed and END goes on down the
pipeline with the number of words seen. The hash is djb2-xor over the folded letters, never 0."""

from tessera.os.service_api import Message, Service, send

TEXT = 1
END = 2
START_HASH = 5381


class Split(Service):
    hash: int = START_HASH
    letters: int = 0
    words: int = 0

    def take(self, byte: int) -> None:
        if 65 <= byte <= 90:
            byte += 32
        if 97 <= byte <= 122:
            self.hash = ((self.hash << 5) + self.hash) ^ byte
            self.letters += 1
        else:
            self.flush()

    def flush(self) -> None:
        if self.letters > 0:
            send("count", self.hash or 1, tag=TEXT)
            self.words += 1
        self.hash = START_HASH
        self.letters = 0

    def handle(self, msg: Message) -> None:
        if msg.tag == END:
            self.flush()
            send("count", self.words, tag=END)
            self.words = 0
            return
        for index in range(len(msg)):
            word = msg[index]
            for shift in range(0, 32, 8):
                self.take((word >> shift) & 0xFF)

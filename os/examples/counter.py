"""Counter: tag ADD adds msg[0] and replies the total; tag READ replies it; tag RESET clears it."""

from tessera.os.service_api import Message, Service, reply

ADD = 1
READ = 2
RESET = 3


class Counter(Service):
    count: int = 0
    requests: int = 0

    def handle(self, msg: Message) -> None:
        self.requests += 1
        if msg.tag == ADD:
            self.count += msg[0]
        elif msg.tag == RESET:
            self.count = 0
        else:
            assert msg.tag == READ, "unknown request"
        reply(self.count, self.requests)

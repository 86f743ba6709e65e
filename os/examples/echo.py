"""Echo: replies to every message with the same words."""

from tessera.os.service_api import Message, Service, reply


class Echo(Service):
    def handle(self, msg: Message) -> None:
        n = len(msg)
        if n == 1:
            reply(msg[0])
        elif n == 2:
            reply(msg[0], msg[1])
        elif n == 3:
            reply(msg[0], msg[1], msg[2])
        else:
            reply(msg[0], msg[1], msg[2], msg[3])

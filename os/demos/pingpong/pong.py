"""Pong: returns the counter it receives plus one."""

from tessera.os.service_api import Message, Service, reply


class Pong(Service):
    def handle(self, msg: Message) -> None:
        reply(msg[0] + 1)

"""Pacer: on START (msg[0] = cycles between messages) streams numbered messages 1, 2, 3, ... to `steady` until
the host sends STOP (any other message), then replies with the last number sent."""

from tessera.os.service_api import Message, Service, receive, reply, send

START = 1


class Pacer(Service):
    def handle(self, msg: Message) -> None:
        assert msg.tag == START, "STOP without START"
        gap = msg[0]
        sent = 0
        while True:
            sent += 1
            send("steady", sent)
            stop = receive(timeout=gap)
            if stop is not None:
                break
        reply(sent)

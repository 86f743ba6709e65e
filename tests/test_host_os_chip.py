"""The chip client (tessera.os.chip) against the fake chip: every command, error replies, and the protocol's loss
repair with bytes damaged or dropped in either direction."""

from __future__ import annotations

import random

import pytest

from tessera.firmware.isa import TileState
from tessera.hw.noc_layouts import HOST_NODE
from tessera.os.chip import Chip, ChipError, Incoming
from tessera.os.link import Link
from tessera.os.protocol import ConfigRegister, Opcode, Status

# Helpers in tests/ (tests/conftest.py puts the folder on sys.path).
import host_os_fakechip as fake


@pytest.fixture
def board():
    chip = fake.FakeChip()
    link = fake.FakeChipLink(chip).open()
    return chip, link, Chip(link, reply_timeout=0.2)


# A tile program: put 0x55 + the first word of each message, send it back to the sender with the same tag.
REPLIER = [
    0x0000228B,  # msg.recv t0 (header)
    0x07F2F313,  # andi t1, t0, 0x7f      sender
    0x0102D393,  # srli t2, t0, 16        tag
    0x0000328B,  # msg.get t0
    0x05528293,  # addi t0, t0, 0x55
    0x0002800B,  # msg.put t0
    0x0073100B,  # msg.send t1, t2
    0xFE5FF06F,  # j 0 (-28)
]


def test_identify_memory_status_and_config(board) -> None:
    chip, _, client = board
    assert client.info == chip.info
    data = bytes(random.Random(3).randrange(256) for _ in range(1000))  # not whole words: padded with zeros
    client.load(2, data)
    assert chip.tiles[2].mem[:1000] == data and chip.tiles[2].mem[1000:1004] == bytes(4)
    assert client.read_memory(2, 4, 3) == [int.from_bytes(data[i:i + 4], "little") for i in (4, 8, 12)]
    client.set_permissions(1, 0b1_0000)
    client.set_supervisor(1, HOST_NODE)
    client.set_watchdog(1, 5000)
    assert chip.config[1] == {ConfigRegister.PERMISSIONS: 0b1_0000, ConfigRegister.SUPERVISOR: HOST_NODE,
                              ConfigRegister.WATCHDOG: 5000}
    client.run(1)
    assert client.status(1).state == TileState.RUNNING
    client.halt(1)
    assert client.status(1).state == TileState.HALTED


def test_send_and_receive_pushed_messages(board) -> None:
    chip, _, client = board
    client.load(1, b"".join(w.to_bytes(4, "little") for w in REPLIER))
    client.set_permissions(1, 1 << 4)  # may send to the host (bit `tiles`)
    client.run(1)
    for value in range(5):
        client.send(1, 7, [value])
    got = []
    while len(got) < 5:
        got += client.poll(1.0)
    assert got == [Incoming(1, 7, (value + 0x55,)) for value in range(5)]
    assert client.status(1).messages_in == 5


def test_message_counters_count_as_the_chip_does(board) -> None:
    """In: receives of the tile's code that opened a message (not arrivals); out: sends the network took; the
    DOWN report is not the tile's send; RESET zeroes all three counters (docs/protocol.md, STATUS)."""
    chip, _, client = board
    client.load(1, b"".join(w.to_bytes(4, "little") for w in REPLIER))
    client.set_permissions(1, 1 << 4)
    client.set_supervisor(1, HOST_NODE)
    for value in range(3):  # queued in the halted tile's mailbox: nothing taken yet
        client.send(1, 7, [value])
    status = client.status(1)
    assert (status.messages_in, status.messages_out, status.retired) == (0, 0, 0)
    client.run(1)
    got = []
    while len(got) < 3:
        got += client.poll(1.0)
    status = client.status(1)
    assert (status.messages_in, status.messages_out) == (3, 3)
    client.halt(1)  # waiting in msg.recv at 0: make that word illegal, so the tile traps and reports DOWN
    client.write_memory(1, 0, bytes(4))
    client.run(1)
    down = client.take(lambda message: message.is_down, 5.0)
    assert down is not None and down.source == 1
    status = client.status(1)
    assert (status.state, status.messages_in, status.messages_out) == (TileState.TRAPPED, 3, 3)
    assert status.retired > 0
    client.reset(1)
    status = client.status(1)
    assert (status.messages_in, status.messages_out, status.retired) == (0, 0, 0)


def test_error_replies_are_one_clear_line(board) -> None:
    _, _, client = board
    with pytest.raises(ChipError, match=r"STATUS tile 9: no such tile \(the chip has tiles 0\.\.3\)"):
        client.status(9)
    with pytest.raises(ChipError, match="address out of range or misaligned"):
        client.read_memory(0, 1022, 1)
    client.run(0)
    with pytest.raises(ChipError, match="the tile is running") as error:
        client.write_memory(0, 0, b"\0\0\0\0")
    assert error.value.status is Status.TILE_BUSY


def test_loss_repair_with_damaged_bytes_both_ways(board) -> None:
    chip, link, client = board
    client.retries = 10
    rng = random.Random(11)

    def damage(data: bytes) -> bytes:
        out = bytearray(data)
        if rng.random() < 0.1:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        return bytes(out)

    link.tamper_in = damage
    link.tamper_out = damage
    payload = bytes(rng.randrange(256) for _ in range(1024))
    client.load(3, payload)
    assert chip.tiles[3].mem == bytearray(payload)
    client.load(1, b"".join(w.to_bytes(4, "little") for w in REPLIER))
    client.set_permissions(1, 1 << 4)
    client.run(1)
    for value in range(20):
        client.send(1, 3, [value])
    got = []
    while len(got) < 20:
        got += client.poll(1.0)
    assert [m.words[0] - 0x55 for m in got] == list(range(20))  # each once, in order: no loss, no duplicate
    sent_by_host = [m for m in chip.noc.delivered if m.src == HOST_NODE]
    assert len(sent_by_host) == 20
    assert client.retransmissions > 0


def test_lost_reply_to_send_is_not_sent_twice(board) -> None:
    chip, link, client = board
    client.run(0)
    dropped: list[bytes] = []
    link.tamper_out = _drop_first(Opcode.SEND, dropped)
    client.send(0, 5, [1, 2])
    assert dropped and client.retransmissions == 1
    chip.advance(200)
    assert len([m for m in chip.noc.delivered if m.src == HOST_NODE]) == 1


def test_lost_message_frame_is_pushed_again(board) -> None:
    chip, link, client = board
    client.nudge_interval = 0.05
    client.load(1, b"".join(w.to_bytes(4, "little") for w in REPLIER))
    client.set_permissions(1, 1 << 4)
    client.run(1)
    lost: list[bytes] = []
    link.tamper_out = _drop_first(Opcode.MESSAGE, lost)
    client.send(1, 9, [1])
    message = client.take(lambda m: m.tag == 9, timeout=3.0)
    assert lost and message == Incoming(1, 9, (0x56,))
    assert client.poll(0.2) == []  # delivered once


def _drop_first(opcode: Opcode, dropped: list[bytes]):
    """A tamper function that removes the first chip -> host frame with `opcode` from the byte stream."""

    def tamper(data: bytes) -> bytes:
        kept = []
        for body in data.split(b"\xc0"):
            if body and not dropped and body[0] & 0x1F == opcode:
                dropped.append(body)
            elif body:
                kept.append(b"\xc0" + body + b"\xc0")
        return b"".join(kept)

    return tamper


class _Silent(Link):
    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        pass

    def _read(self, timeout: float | None) -> bytes:
        return b""


def test_no_board_answering_is_one_line() -> None:
    with pytest.raises(ChipError, match=r"^silent: IDENTIFY: no reply within 0.01 s after 3 tries \(is the board"):
        Chip(_Silent("silent").open(), reply_timeout=0.01, retries=3)


def test_take_keeps_every_other_message_in_order(board) -> None:
    _, _, client = board
    first, wanted, last = Incoming(1, 5, (1,)), Incoming(2, 5, (2,)), Incoming(3, 5, (3,))
    client.inbox.extend([first, wanted, last])  # arrived in one batch
    assert client.take(lambda m: m.source == 2, 0.1) == wanted
    assert list(client.inbox) == [first, last]

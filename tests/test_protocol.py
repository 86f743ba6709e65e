"""Host-link protocol: codec (tessera.os.protocol) and the bridge's reference model (tessera.sim.bridge_model)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera.firmware.isa import TileState
from tessera.os import protocol as p
from tessera.sim.bridge_model import BridgeModel, FakeNetwork, FakeTileArray

INFO = p.ChipInfo(
    protocol_version=p.PROTOCOL_VERSION,
    tile_count=3,
    mem_log2=10,
    max_words=8,
    message_words=4,
    mesh_width=2,
    mesh_height=2,
    mailbox_depth=4,
    host_node=3,
    features=p.Feature.WATCHDOG | p.Feature.SUPERVISOR,
    clock_hz=12_000_000,
)


def test_crc_check_value_and_residue() -> None:
    assert p.crc16(b"123456789") == 0x29B1  # the catalogued check value of CRC-16/CCITT-FALSE
    body = p.seal(b"\x21\x07\x00hello")
    assert p.crc16(body) == 0


@given(st.binary(max_size=300))
def test_slip_round_trip(body: bytes) -> None:
    wire = p.slip_encode(body)
    assert p.END not in wire[1:-1]
    frames = list(p.SlipDecoder().feed(wire))
    assert frames == ([p.RawFrame(body)] if body else [])


def test_slip_bad_escape_and_resync() -> None:
    decoder = p.SlipDecoder()
    frames = list(decoder.feed(bytes([0x11, p.ESC, 0x12, 0x13, p.END, 0x14, p.ESC, p.ESC_END, p.END, p.END])))
    assert frames == [p.RawFrame(bytes([0x11, 0x12, 0x13]), line_error=True), p.RawFrame(bytes([0x14, p.END]))]


def test_slip_oversize_is_bounded() -> None:
    frames = list(p.SlipDecoder(max_body=10).feed(bytes(100) + bytes([p.END])))
    assert frames == [p.RawFrame(bytes(11))]


def test_command_bytes_golden() -> None:
    """The worked example in docs/protocol.md."""
    body = p.WriteMem(tile=2, address=0x40, words=(0x12345678,)).body(seq=7)
    assert body[:-2] == bytes([0x21, 0x07, 0x02, 0x40, 0, 0, 0, 0x78, 0x56, 0x34, 0x12])
    assert body[-2:] == p.crc16(body[:-2]).to_bytes(2, "big")
    assert p.Identify().frame(seq=0)[:4] == bytes([p.END, 0x20, 0x00, 0x00])


def test_command_field_checks() -> None:
    with pytest.raises(ValueError, match="sequence number 256"):
        p.Identify().body(seq=256)
    with pytest.raises(ValueError, match="address"):
        p.ReadMem(address=-4).body(seq=0)
    with pytest.raises(ValueError, match="word 0x100000000"):
        p.Send(words=(1 << 32,)).body(seq=0)


def test_chip_info_and_status_round_trip() -> None:
    assert p.ChipInfo.from_bytes(INFO.to_bytes()) == INFO
    status = p.TileStatus(TileState.TRAPPED, 7, 0x1234, (5 << 32) | 9, 100, 3, 4)
    assert p.TileStatus.from_words(status.to_words()) == status
    with pytest.raises(p.ProtocolError, match="expected 15"):
        p.ChipInfo.from_bytes(bytes(3))


def test_parse_reply_errors() -> None:
    with pytest.raises(p.ProtocolError, match="shorter"):
        p.parse_reply(b"\x20\x00")
    body = bytearray(p.build_reply(p.Opcode.RUN, 1, 0, p.Status.OK))
    body[3] ^= 1
    with pytest.raises(p.ProtocolError, match="CRC"):
        p.parse_reply(bytes(body))


# ---------------------------------------------------------------------------------------------------------
# The reference model, command by command


class Host:
    """Drives a BridgeModel like the host would: one frame, one reply."""

    def __init__(self) -> None:
        self.tiles = FakeTileArray(INFO.tile_count, INFO.mem_bytes // 4)
        self.net = FakeNetwork()
        self.model = BridgeModel(INFO, self.tiles, self.net)
        self.seq = 0

    def raw(self, wire: bytes) -> list[p.Reply]:
        return [p.parse_reply(f.body) for f in p.SlipDecoder().feed(self.model.feed(wire))]

    def call(self, command: p.Command, seq: int | None = None) -> p.Reply:
        if seq is None:
            self.seq = (self.seq + 1) & 0xFF
            seq = self.seq
        replies = self.raw(command.frame(seq))
        assert len(replies) == 1
        reply = replies[0]
        assert (reply.opcode, reply.seq, reply.tile) == (command.opcode, seq, command.tile)
        return reply


def test_model_identify() -> None:
    reply = Host().call(p.Identify())
    assert reply.status == p.Status.OK
    assert p.ChipInfo.from_bytes(reply.payload) == INFO


def test_model_memory_write_read_and_ranges() -> None:
    h = Host()
    assert h.call(p.WriteMem(tile=1, address=8, words=(1, 2, 3))).status == p.Status.OK
    assert h.tiles.tiles[1].memory[2:5] == [1, 2, 3]
    assert h.call(p.ReadMem(tile=1, address=4, count=4)).words() == (0, 1, 2, 3)
    last = INFO.mem_bytes - 4 * INFO.max_words
    assert h.call(p.WriteMem(tile=0, address=last, words=tuple(range(INFO.max_words)))).status == p.Status.OK
    for bad in (p.WriteMem(tile=0, address=last + 4, words=tuple(range(INFO.max_words))),
                p.ReadMem(tile=0, address=2, count=1),
                p.ReadMem(tile=0, address=INFO.mem_bytes, count=1),
                p.ReadMem(tile=0, address=0xFFFF_FFFC, count=2)):
        assert h.call(bad).status == p.Status.ADDR_RANGE, bad
    for bad in (p.WriteMem(tile=0, address=0, words=()),
                p.ReadMem(tile=0, address=0, count=0),
                p.ReadMem(tile=0, address=0, count=INFO.max_words + 1)):
        assert h.call(bad).status == p.Status.BAD_LENGTH, bad
    assert h.call(p.ReadMem(tile=3, address=0, count=1)).status == p.Status.TILE_RANGE
    # One word more than max_words does not fit the bridge's buffer: a link error, not a length error.
    assert h.call(p.WriteMem(tile=0, address=0, words=tuple(range(INFO.max_words + 1)))).status == p.Status.OVERSIZE


def test_model_control_status_and_busy() -> None:
    h = Host()
    h.tiles.tiles[2].pc = 0x40
    h.tiles.tiles[2].retired = 77
    h.tiles.cycle = (1 << 32) + 5
    assert h.call(p.Run(tile=2)).status == p.Status.OK
    status = p.TileStatus.from_words(h.call(p.ReadStatus(tile=2)).words())
    assert status == p.TileStatus(TileState.RUNNING, 0, 0x40, (1 << 32) + 5, 77, 0, 0)
    assert h.call(p.WriteMem(tile=2, address=0, words=(9,))).status == p.Status.TILE_BUSY
    assert h.call(p.ReadMem(tile=2, address=0, count=1)).status == p.Status.TILE_BUSY
    assert h.tiles.tiles[2].memory[0] == 0
    assert h.call(p.Halt(tile=2)).status == p.Status.OK
    assert h.tiles.tiles[2].state == TileState.HALTED
    assert h.call(p.Reset(tile=2)).status == p.Status.OK
    assert h.tiles.tiles[2].pc == 0
    assert h.call(p.Run(tile=9)).status == p.Status.TILE_RANGE


def test_model_config_registers() -> None:
    h = Host()
    assert h.call(p.SetPermissions(tile=1, value=0b101)).status == p.Status.OK
    assert h.call(p.SetSupervisor(tile=1, value=3)).status == p.Status.OK
    assert h.call(p.SetWatchdog(tile=1, value=100_000)).status == p.Status.OK
    assert h.tiles.tiles[1].config == {p.ConfigRegister.PERMISSIONS: 5, p.ConfigRegister.SUPERVISOR: 3,
                                      p.ConfigRegister.WATCHDOG: 100_000}
    short = p.seal(bytes([0x20 | p.Opcode.SET_WATCHDOG, 50, 1, 1, 2]))
    assert h.raw(p.slip_encode(short))[0].status == p.Status.BAD_LENGTH


def test_model_send_net_busy_and_fault() -> None:
    h = Host()
    assert h.call(p.Send(tile=1, tag=0xAB, words=(0xAB, 1, 2))).status == p.Status.OK
    h.net.accepting = False
    assert h.call(p.Send(tile=1, tag=1, words=(0xAB,))).status == p.Status.NET_BUSY
    h.net.fault_cause = 16
    reply = h.call(p.Send(tile=1, tag=1, words=(0xAB,)))
    assert (reply.status, reply.payload) == (p.Status.NET_FAULT, bytes([16]))
    assert h.net.sent == [(1, 0xAB, (0xAB, 1, 2))]
    assert h.call(p.Send(tile=1, words=())).status == p.Status.BAD_LENGTH
    assert h.call(p.Send(tile=1, words=(1,) * (INFO.message_words + 1))).status == p.Status.BAD_LENGTH
    assert h.call(p.Send(tile=INFO.tile_count, words=(1,))).status == p.Status.TILE_RANGE


def test_model_message_push_ack_and_resend() -> None:
    h = Host()
    pushed = [p.parse_reply(f.body) for f in p.SlipDecoder().feed(h.model.deliver(2, 0x77, (1, 2)))]
    assert [(r.opcode, r.seq, r.message()) for r in pushed] == [(p.Opcode.MESSAGE, 0, (2, 0x77, (1, 2)))]
    assert h.model.deliver(1, 5, (3,)) == b""  # held until the first is acknowledged
    # A wrong ack (the host missed push 0) makes the bridge push it again after the reply.
    replies = h.raw(p.AckMessage(push_seq=255).frame(seq=40))
    assert [(r.opcode, r.seq) for r in replies] == [(p.Opcode.ACK_MESSAGE, 40), (p.Opcode.MESSAGE, 0)]
    replies = h.raw(p.AckMessage(push_seq=0).frame(seq=41))
    assert [(r.opcode, r.seq, r.message()) for r in replies[1:]] == [(p.Opcode.MESSAGE, 1, (1, 5, (3,)))]


def test_model_duplicate_is_not_reexecuted() -> None:
    h = Host()
    h.call(p.Send(tile=0, words=(1,)), seq=5)
    again = h.call(p.Send(tile=0, words=(1,)), seq=5)
    assert again.status == p.Status.DUPLICATE and again.payload == bytes([p.Status.OK])
    assert h.net.sent == [(0, 0, (1,))]
    assert h.call(p.ReadMem(tile=7, address=0, count=1), seq=6).status == p.Status.TILE_RANGE
    assert h.call(p.ReadMem(tile=7, address=0, count=1), seq=6).payload == bytes([p.Status.TILE_RANGE])
    assert h.call(p.Identify(), seq=6).status == p.Status.OK  # IDENTIFY always executes


def test_model_link_errors() -> None:
    h = Host()
    good = p.Run(tile=0).body(seq=9)
    bad_crc = bytearray(good)
    bad_crc[2] ^= 0x40
    assert h.raw(p.slip_encode(bytes(bad_crc)))[0].status == p.Status.BAD_CRC
    assert h.raw(p.slip_encode(good[:4]))[0].status == p.Status.TRUNCATED
    big = p.seal(bytes([0x20 | p.Opcode.WRITE_MEM, 1, 0]) + bytes(4 + 4 * INFO.max_words + 1))
    assert h.raw(p.slip_encode(big))[0].status == p.Status.OVERSIZE
    assert h.raw(bytes([p.END, 0x20, p.ESC, 0x01, p.END]))[0].status == p.Status.LINE_ERROR
    assert h.raw(p.slip_encode(p.seal(bytes([0x40 | p.Opcode.RUN, 1, 0]))))[0].status == p.Status.BAD_VERSION
    assert h.raw(p.slip_encode(p.seal(bytes([0x40 | p.Opcode.IDENTIFY, 2, 0]))))[0].status == p.Status.OK
    assert h.raw(p.slip_encode(p.seal(bytes([0x20 | 17, 3, 0]))))[0].status == p.Status.UNKNOWN_COMMAND
    assert h.raw(p.slip_encode(p.seal(bytes([0x20 | p.Opcode.MESSAGE, 4, 0]))))[0].status == p.Status.UNKNOWN_COMMAND
    assert h.tiles.tiles[0].state == TileState.HALTED
    h.model.line_error()
    assert h.raw(good + bytes([p.END]))[0].status == p.Status.LINE_ERROR
    assert h.call(p.Run(tile=0)).status == p.Status.OK


def random_frame(rng: random.Random, host_seq: int) -> tuple[bytes, bool]:
    """A wire frame and whether it is intact; broken ones are corrupted, truncated, oversize or random bytes."""
    good = rng.choice([
        p.WriteMem(tile=rng.randrange(4), address=4 * rng.randrange(260), words=tuple(rng.randrange(1 << 32) for _ in range(rng.randrange(1, 9)))),
        p.ReadMem(tile=rng.randrange(4), address=4 * rng.randrange(260), count=rng.randrange(10)),
        p.Run(tile=rng.randrange(4)), p.Halt(tile=rng.randrange(4)), p.Reset(tile=rng.randrange(4)),
        p.ReadStatus(tile=rng.randrange(4)), p.SetWatchdog(tile=rng.randrange(4), value=rng.randrange(1 << 32)),
        p.Send(tile=rng.randrange(4), words=(rng.randrange(1 << 32),)), p.Identify(),
    ]).body(host_seq)
    kind = rng.randrange(5)
    if kind == 0:
        return p.slip_encode(good), True
    body = bytearray(good)
    if kind == 1:  # bit flips anywhere in the body
        for _ in range(rng.randrange(1, 4)):
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
        return p.slip_encode(bytes(body)), bytes(body) == good
    if kind == 2:  # truncated
        return p.slip_encode(bytes(body[: rng.randrange(1, len(body))])), False
    if kind == 3:  # oversize: a good-looking frame that is too long
        return p.slip_encode(p.seal(bytes(body[:3]) + bytes(rng.randrange(256) for _ in range(p.max_body(INFO.max_words))))), False
    noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))).replace(bytes([p.END]), b"") or b"\x01"
    return bytes([p.END]) + noise + bytes([p.END]), False


def snapshot(h: Host) -> tuple:
    tiles = tuple((t.state, t.pc, t.cause, tuple(t.memory), tuple(sorted(t.config.items()))) for t in h.tiles.tiles)
    return tiles, tuple(h.net.sent)


def test_model_fuzz_bad_frames_change_nothing() -> None:
    """10^4 frames: every broken frame gets exactly one reply (a link error or, for random bytes that happen to
    be well formed, a checked status), changes no tile and no network state, and the next good frame works."""
    rng = random.Random(2024)
    h = Host()
    for i in range(10_000):
        before = snapshot(h)
        wire, intact = random_frame(rng, (h.seq + 1) & 0xFF)
        replies = h.raw(wire)
        assert len(replies) == 1, wire.hex()
        reply = replies[0]
        if intact:
            h.seq = (h.seq + 1) & 0xFF
        elif reply.status in p.LINK_ERRORS or reply.status in (p.Status.BAD_VERSION, p.Status.UNKNOWN_COMMAND):
            assert snapshot(h) == before, f"frame {i} changed state: {wire.hex()}"
        if i % 50 == 0:
            word = rng.randrange(1 << 32)
            assert h.call(p.Halt(tile=1)).status == p.Status.OK
            assert h.call(p.WriteMem(tile=1, address=0, words=(word,))).status == p.Status.OK
            assert h.call(p.ReadMem(tile=1, address=0, count=1)).words() == (word,)

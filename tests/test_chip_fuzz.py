"""Fuzzing the whole chip's host link under Verilator: 10^4 random, corrupted, truncated, oversize and garbage
frames (tessera.sim.frame_fuzz) into the real RTL, every reply compared byte for byte with the bridge's
reference model (tessera.sim.bridge_model), then every tile's memory and status read back and a program run.

The chip runs free on the virtual board (sim/vboard_main.cpp: Verilator, clocked in C++, bytes offered on the
`rx` stream as fast as the bridge takes them), so no Python runs per clock or per byte on the chip side. Frames
go out in batches; the bridge holds `rx` off while it executes a frame, so a batch is lossless and its replies
come back in order. Fuzz frames never RUN a tile, SEND or read STATUS (their results depend on the tiles'
programs and the clock, which the model does not have); their corrupted forms are all in.
"""

from __future__ import annotations

import random
import socket
import time

import pytest

from tessera.firmware.asm import assemble
from tessera.firmware.isa import TileState
from tessera.hw.chip import TesseraChip
from tessera.hw.noc_layouts import HOST_NODE
from tessera.os import protocol as p
from tessera.sim import virtual_board
from tessera.sim.bridge_model import BridgeModel, FakeNetwork, FakeTileArray
from tessera.sim.frame_fuzz import fuzz_frames
from tessera.sim.virtual_board import ChipSpec, VirtualBoard

PARAMS = {"tiles": 4, "mem_bytes": 1024}
FUZZ_FRAMES = 10_000
BATCH = 250
REFUSED = frozenset({p.Opcode.RUN, p.Opcode.SEND, p.Opcode.STATUS})


class BoardHost:
    """Raw bytes to the board's TCP port; complete frames back."""

    def __init__(self, host: str, port: int) -> None:
        self._socket = socket.create_connection((host, port), timeout=30)
        self._decoder = p.SlipDecoder()
        self._frames: list[bytes] = []

    def close(self) -> None:
        self._socket.close()

    def exchange(self, wire: bytes, frames: int, timeout: float = 60.0) -> list[bytes]:
        """Send `wire`, return the next `frames` frame bodies (and check that nothing more comes right after)."""
        self._socket.sendall(wire)
        deadline = time.monotonic() + timeout
        while len(self._frames) < frames:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self._frames)} of {frames} frames within {timeout} s")
            self._socket.settimeout(max(0.01, deadline - time.monotonic()))
            data = self._socket.recv(65536)
            if not data:
                raise AssertionError("the board closed the connection")
            self._frames += [frame.body for frame in self._decoder.feed(data)]
        got, self._frames = self._frames[:frames], self._frames[frames:]
        assert not self._frames, f"unexpected frames {[body.hex() for body in self._frames]}"
        return got


class Checked:
    """The chip and the model side by side: `send` plays wire bytes into both and requires identical replies."""

    def __init__(self, host: BoardHost, info: p.ChipInfo) -> None:
        self.host = host
        self.tiles = FakeTileArray(info.tile_count, info.mem_bytes // 4)
        self.network = FakeNetwork()
        self.model = BridgeModel(info, self.tiles, self.network)
        self.info = info

    def send(self, frames: list[bytes]) -> list[bytes]:
        expected: list[bytes] = []
        per_frame: list[int] = []
        for wire in frames:
            replies = [raw.body for raw in p.SlipDecoder().feed(self.model.feed(wire))]
            expected += replies
            per_frame.append(len(replies))
        got = self.host.exchange(b"".join(frames), len(expected))
        if got != expected:
            at = next(i for i, (g, e) in enumerate(zip(got, expected)) if g != e)
            frame = next(i for i in range(len(frames)) if sum(per_frame[: i + 1]) > at)
            raise AssertionError(f"reply {at} (to frame {frames[frame].hex()}): chip {got[at].hex()}, "
                                 f"model {expected[at].hex()}")
        return got


@pytest.mark.slow
def test_fuzz_frames_against_model_on_rtl() -> None:
    info = TesseraChip(**PARAMS, link="bytes").info
    build = virtual_board.build_board(ChipSpec(virtual_board.DEFAULT_CHIP, PARAMS))
    rng = random.Random(2026)
    with VirtualBoard.start(build, pty=False) as board:
        host = BoardHost(board.endpoints.host, board.endpoints.port)
        chip = Checked(host, info)
        seq = 0

        def good(*commands: p.Command) -> list[p.Reply]:
            nonlocal seq
            frames = []
            for command in commands:
                seq = (seq + 1) & 0xFF
                frames.append(command.frame(seq))
            replies = [p.parse_reply(body) for body in chip.send(frames)]
            assert all(reply.status == p.Status.OK for reply in replies), replies
            return replies

        assert p.ChipInfo.from_bytes(good(p.Identify())[0].payload) == info
        # Every tile's memory gets distinct random contents, so any stray write shows.
        words = info.mem_bytes // 4
        for tile in range(info.tile_count):
            image = [rng.randrange(1 << 32) for _ in range(words)]
            good(*(p.WriteMem(tile=tile, address=4 * start, words=tuple(image[start : start + info.max_words]))
                   for start in range(0, words, info.max_words)))

        frames, made = fuzz_frames(rng, info, FUZZ_FRAMES, refuse=REFUSED, first_seq=seq + 1)
        started = time.monotonic()
        statuses: dict[int, int] = {}
        for start in range(0, len(frames), BATCH):
            for body in chip.send(frames[start : start + BATCH]):
                status = p.parse_reply(body).status
                statuses[status] = statuses.get(status, 0) + 1
        elapsed = time.monotonic() - started
        seq = 0x80
        good(p.Identify())  # never a DUPLICATE, and the later numbers follow it: none repeats the fuzz's last
        print(f"\n{len(frames)} fuzz frames in {elapsed:.1f} s; kinds {made}; "
              f"replies {{{', '.join(f'{p.Status(s).name}: {n}' for s, n in sorted(statuses.items()))}}}")
        assert set(statuses) == set(p.Status) - {p.Status.TILE_BUSY, p.Status.NET_BUSY, p.Status.NET_FAULT}, statuses

        # No state changed but what the good frames did: memory as the model has it, every tile still halted at
        # pc 0 with nothing counted.
        for tile in range(info.tile_count):
            for start in range(0, words, info.max_words):
                read = good(p.ReadMem(tile=tile, address=4 * start, count=info.max_words))[0].words()
                assert list(read) == chip.tiles.tiles[tile].memory[start : start + info.max_words], (tile, start)
            status = p.TileStatus.from_words(host_status(host, tile, seq := (seq + 1) & 0xFF))
            assert (status.state, status.cause, status.pc) == (TileState.HALTED, 0, 0), status
            assert (status.retired, status.messages_in, status.messages_out) == (0, 0, 0), status

        # A good frame afterwards works: a program on tile 0 sends one message to the host.
        program = assemble(f"li t1, 0x5a\nmsg.put t1\nli t2, {HOST_NODE}\nli t3, 9\nmsg.send t2, t3\nend: j end\n")
        good(p.Reset(tile=0), p.WriteMem(tile=0, address=0, words=tuple(program.words())),
             p.SetPermissions(tile=0, value=1 << info.tile_count))
        seq = (seq + 1) & 0xFF
        replies = [p.parse_reply(body) for body in host.exchange(p.Run(tile=0).frame(seq), 2)]
        assert replies[0].status == p.Status.OK and replies[1].is_message, replies
        assert replies[1].message() == (0, 9, (0x5A,)), replies[1]
        host.close()


def host_status(host: BoardHost, tile: int, seq: int) -> tuple[int, ...]:
    """STATUS straight from the chip (the model cannot predict the cycle counter)."""
    reply = p.parse_reply(host.exchange(p.ReadStatus(tile=tile).frame(seq), 1)[0])
    assert reply.status == p.Status.OK, reply
    return reply.words()

"""The tile runtime (firmware/runtime.s) and the integer semantics at their edges."""

from __future__ import annotations

import itertools

from tessera.hw.noc_layouts import MessageOp
from tessera.os.codegen_support import message_word
from tessera.os.service_build import RUNTIME_BUDGET, runtime
from tessera.os.service_runner import ServiceRunner
from tessera.os.service_tile import FAULT_FUNCT3, TileService


def test_runtime_fits_a_quarter_of_a_1k_tile() -> None:
    assert len(runtime().image) <= RUNTIME_BUDGET == 1024 // 4


def test_runtime_message_words_match_the_network_encoding() -> None:
    words = set(runtime().words())
    expected = [message_word(MessageOp.RECV, rd="t0"), message_word(MessageOp.GET, rd="t0"),
                message_word(MessageOp.RECVT, rd="t0", rs1="a1")]
    for line in expected:
        assert int(line.split()[1], 16) in words, line
    fault = (10 << 15) | (FAULT_FUNCT3 << 12) | 0b0001011  # msg.fault a0
    assert fault in words


EDGES = [0, 1, -1, 2, -2, 3, -3, 7, -7, 31, 32, 33, 0x7FFFFFFF, -0x80000000, 0x12345678, -0x12345678, 65536]

ARITHMETIC = """
from tessera.os.service_api import Service, Message, reply, u32lt, u32shr

class Ops(Service):
    def handle(self, msg: Message) -> None:
        a = msg[0]
        b = msg[1]
        if b != 0:
            reply(a * b, a // b, a % b, (a << b) ^ (a >> b))
        else:
            reply(a * b, a - b, u32lt(a, b) + 2 * (a < b), u32shr(a, b) + abs(a) + min(a, b) - max(a, b))
"""


def test_arithmetic_edges_agree_with_cpython() -> None:
    tile = TileService(ARITHMETIC, "ops.py")
    runner = ServiceRunner(ARITHMETIC, "ops.py")
    tile.start()
    runner.start()
    for a, b in itertools.product(EDGES, repeat=2):
        tile.deliver(1, 0, a & 0xFFFFFFFF, b & 0xFFFFFFFF)
        runner.deliver(1, 0, a & 0xFFFFFFFF, b & 0xFFFFFFFF)
    assert tile.fault is None and runner.fault is None
    assert tile.sent == runner.sent
    quotient = runner.sent[EDGES.index(-7) * len(EDGES) + EDGES.index(2)].words[1]
    assert quotient == -4 & 0xFFFFFFFF  # floor division, as Python

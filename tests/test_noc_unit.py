"""The message instructions on the RTL message unit, against the reference model's NodeUnit.

A scripted program per scenario runs on the RTL (a 2-tile ring plus host) one instruction at a time, as a core issues
them; in the cycle the RTL answers, the same instruction goes to the model (which is stepped in lockstep with the
RTL clock) and both answers must agree: result, fault, cause. Scenarios cover every instruction, every fault cause,
and the waiting behaviour (blocking SEND, RECV, RECVT timeout). Every scenario runs on both mailbox layouts: the
staged message in a block RAM of its own, and in the queue's (`separate_staging=False`).
"""

from __future__ import annotations

import pytest
from amaranth.sim import Simulator

from tessera.firmware.isa import Cause
from tessera.hw.network import RingNetwork, node_address
from tessera.hw.noc_layouts import HOST_NODE, MessageOp
from tessera.sim.model import MessageReply
from tessera.sim.noc_model import NocModel, NodeUnit

NUM_TILES = 2
ADDRESSES = [node_address(i, NUM_TILES) for i in range(NUM_TILES + 1)]
#: Sends allowed per node address (tile 1 may not send to the host; the host may send anywhere).
PERMISSIONS = {0: [0, 1, HOST_NODE], 1: [0, 1], HOST_NODE: ADDRESSES}

Step = tuple[int, MessageOp | tuple[int, int], int, int]  # node address, instruction (or raw funct3/funct7), rs1, rs2


@pytest.fixture(params=[True, False], ids=["two-ebr-mailbox", "one-ebr-mailbox"])
def separate_staging(request: pytest.FixtureRequest) -> bool:
    """The mailbox layout of the ring's message units (`MessageUnit(separate_staging=...)`)."""
    return request.param


def permission_bits(destinations: list[int]) -> int:
    return sum(1 << (NUM_TILES if d == HOST_NODE else d) for d in destinations)


def run_program(
    program: list[Step], limit: int = 400, *, separate_staging: bool
) -> list[tuple[MessageReply, int]]:
    """Run `program`; return each instruction's RTL reply and how many cycles it took (checked against the model)."""
    network = RingNetwork(num_tiles=NUM_TILES, depth=2, retry_delay=8, separate_staging=separate_staging)
    model = NocModel(NUM_TILES, depth=2, retry_delay=8)
    units = {address: NodeUnit(model, address) for address in ADDRESSES}
    replies: list[tuple[MessageReply, int]] = []

    async def testbench(ctx) -> None:
        for index, address in enumerate(ADDRESSES):
            ctx.set(network.permissions[index].we, 1)
            ctx.set(network.permissions[index].data, permission_bits(PERMISSIONS[address]))
            model.set_permissions(address, PERMISSIONS[address])
        await ctx.tick()
        model.step()
        for index in range(len(ADDRESSES)):
            ctx.set(network.permissions[index].we, 0)
        for address, instruction, rs1, rs2 in program:
            port = network.cores[ADDRESSES.index(address)]
            funct3, funct7 = (
                (instruction.funct3, instruction.funct7) if isinstance(instruction, MessageOp) else instruction
            )
            ctx.set(port.valid, 1)
            ctx.set(port.funct3, funct3)
            ctx.set(port.funct7, funct7)
            ctx.set(port.rs1, rs1)
            ctx.set(port.rs2, rs2)
            for cycles in range(limit):
                if ctx.get(port.ready):
                    break
                model.step()
                await ctx.tick()
            else:
                raise AssertionError(f"{instruction} on node {address} did not complete in {limit} cycles")
            reply = MessageReply(ctx.get(port.result), bool(ctx.get(port.fault)), ctx.get(port.cause))
            expected = units[address].execute(funct3, funct7, rs1, rs2)
            while expected is None and instruction == MessageOp.RECVT:  # the model's timer starts on its first call
                model.step()
                expected = units[address].execute(funct3, funct7, rs1, rs2)
            assert reply == expected, f"{instruction} on node {address}: RTL {reply}, model {expected}"
            replies.append((reply, cycles))
            # The instruction completes at this clock edge; the core drops valid after it, for one idle cycle.
            model.step()
            await ctx.tick()
            ctx.set(port.valid, 0)
            model.step()
            await ctx.tick()

    simulator = Simulator(network)
    simulator.add_clock(1e-6)
    simulator.add_testbench(testbench)
    simulator.run()
    return replies


def fault(cause: Cause) -> MessageReply:
    return MessageReply(fault=True, cause=cause)


def test_message_round_trip_with_header_count_status_and_skip(separate_staging: bool) -> None:
    program: list[Step] = [
        (0, MessageOp.PUT, 0x1111_2222, 0),
        (0, MessageOp.PUT, 0x3333_4444, 0),
        (0, MessageOp.STATUS, 0, 0),
        (0, MessageOp.SEND, 1, 0xBEEF),
        (0, MessageOp.PUT, 0x5555_6666, 0),  # waits until the first message is acknowledged
        (0, MessageOp.SEND, 1, 7),
        (1, MessageOp.RECV, 0, 0),
        (1, MessageOp.COUNT, 0, 0),
        (1, MessageOp.GET, 0, 0),
        (1, MessageOp.RECV, 0, 0),  # skips the unread second word
        (1, MessageOp.GET, 0, 0),
        (1, MessageOp.STATUS, 0, 0),
        (1, MessageOp.TRYRECV, 0, 0),
    ]
    replies = [reply for reply, _ in run_program(program, separate_staging=separate_staging)]
    assert replies[2].result == 0b10 << 4  # two words staged, nothing in flight
    assert replies[6].result == 0 | (2 << 8) | (0xBEEF << 16)  # src 0, length 2, tag
    assert replies[8].result == 0x1111_2222
    assert replies[10].result == 0x5555_6666
    assert replies[12].result == 0  # empty


def test_trysend_reports_busy_and_send_waits_for_the_ack(separate_staging: bool) -> None:
    program: list[Step] = [
        (0, MessageOp.PUT, 1, 0),
        (0, MessageOp.TRYSEND, HOST_NODE, 1),
        (0, MessageOp.PUT, 2, 0),  # blocks until the ACK
        (0, MessageOp.STATUS, 0, 0),
        (HOST_NODE, MessageOp.RECV, 0, 0),
        (HOST_NODE, MessageOp.GET, 0, 0),
    ]
    replies = run_program(program, separate_staging=separate_staging)
    assert replies[1][0].result == 1
    assert replies[2][1] > 10, "PUT did not wait for the in-flight message"
    assert replies[5][0].result == 1


def test_full_mailbox_nacks_and_the_sender_retries_until_there_is_room(separate_staging: bool) -> None:
    # Depth 2: the third message to tile 1 is NACKed until tile 1 opens one (which frees the entry before it).
    program: list[Step] = []
    for value in (10, 20, 30):
        program += [(0, MessageOp.PUT, value, 0), (0, MessageOp.SEND, 1, value)]
    program += [(0, MessageOp.STATUS, 0, 0)]
    program += [(1, MessageOp.RECV, 0, 0), (1, MessageOp.RECV, 0, 0), (1, MessageOp.RECV, 0, 0), (1, MessageOp.GET, 0, 0)]
    replies = [reply for reply, _ in run_program(program, separate_staging=separate_staging)]
    assert replies[6].result & 1, "the third message should still be in flight (NACKed) while tile 1 holds two"
    assert [r.result >> 16 for r in replies[7:10]] == [10, 20, 30]
    assert replies[10].result == 30


@pytest.mark.parametrize(
    ("program", "cause"),
    [
        ([(1, MessageOp.PUT, 1, 0), (1, MessageOp.SEND, HOST_NODE, 0)], Cause.SEND_DENIED),  # not in its set
        ([(0, MessageOp.PUT, 1, 0), (0, MessageOp.SEND, 2, 0)], Cause.SEND_DENIED),  # no tile 2 on this ring
        ([(0, MessageOp.PUT, 1, 0), (0, MessageOp.SEND, 0x100 | 1, 0)], Cause.SEND_DENIED),  # not an address
        ([(0, MessageOp.PUT, 1, 0), (0, MessageOp.TRYSEND, 1 << 20, 0)], Cause.SEND_DENIED),
        ([(0, MessageOp.SEND, 1, 0)], Cause.MESSAGE_FAULT),  # nothing staged
        ([(0, MessageOp.PUT, 1, 0), (0, MessageOp.SEND, 1, 0x1_0000)], Cause.MESSAGE_FAULT),  # tag beyond 16 bits
        ([(0, MessageOp.PUT, w, 0) for w in range(5)], Cause.MESSAGE_FAULT),  # a fifth word
        ([(1, MessageOp.GET, 0, 0)], Cause.MESSAGE_FAULT),  # no message open
        ([(1, MessageOp.RECVT, 1 << 16, 0)], Cause.MESSAGE_FAULT),  # timeout beyond the timer
        ([(0, (5, 0), 0, 0)], Cause.ILLEGAL_INSN),
        ([(0, (2, 3), 0, 0)], Cause.ILLEGAL_INSN),
        ([(0, (0, 1), 0, 0)], Cause.ILLEGAL_INSN),
    ],
)
def test_faults(program: list[Step], cause: Cause, separate_staging: bool) -> None:
    replies = run_program(program, separate_staging=separate_staging)
    assert replies[-1][0] == fault(cause)
    assert not any(reply.fault for reply, _ in replies[:-1])


def test_get_beyond_the_message_faults_and_the_node_keeps_working(separate_staging: bool) -> None:
    program: list[Step] = [
        (0, MessageOp.PUT, 9, 0),
        (0, MessageOp.SEND, 1, 3),
        (1, MessageOp.RECV, 0, 0),
        (1, MessageOp.GET, 0, 0),
        (1, MessageOp.GET, 0, 0),
        (0, MessageOp.PUT, 8, 0),
        (0, MessageOp.SEND, 1, 4),
        (1, MessageOp.RECV, 0, 0),
    ]
    replies = [reply for reply, _ in run_program(program, separate_staging=separate_staging)]
    assert replies[4] == fault(Cause.MESSAGE_FAULT)
    assert replies[7].result >> 16 == 4


def test_receive_with_timeout_returns_zero_after_the_timeout(separate_staging: bool) -> None:
    replies = run_program([(1, MessageOp.RECVT, 40, 0), (1, MessageOp.RECVT, 0, 0)], separate_staging=separate_staging)
    (first, first_cycles), (second, second_cycles) = replies
    assert first.result == 0 and 40 <= first_cycles <= 42
    assert second.result == 0 and second_cycles <= 2

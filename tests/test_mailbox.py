"""The mailbox on its own: the block RAMs each layout takes, and the one-EBR layout's port sharing.

With `separate_staging=False` the staged message lives in the queue's memory, and the ring's side owns the ports
whenever it uses them (the ring never waits): ejection the write port, the router's staging reads (`staging.en`) the
read port. These directed cases make a PUT collide with an ejection and a read with staging reads, and check that the
ring's side got every cycle it asked for, that the waiting side finished after it, and that every halfword landed
where it belongs. (tests/test_noc_unit.py and tests/test_noc_stress.py run both layouts against the reference model.)
"""

from __future__ import annotations

import pytest
from amaranth.hdl import Fragment, MemoryInstance
from amaranth.sim import Simulator

from tessera.hw.mailbox import Mailbox, ReadOp
from tessera.hw.noc_layouts import SLOT_FLITS

SOURCE = 3
TAG = 0xBEEF
WORDS = (0x1111_2222, 0x3333_4444)
#: The ejected slot: route header (dest 0, SOURCE, two words), tag, payload halves low first, unused flits 0.
SLOT = [SOURCE << 7 | (len(WORDS) - 1) << 14, TAG] + [half for word in WORDS for half in (word & 0xFFFF, word >> 16)]
SLOT += [0] * (SLOT_FLITS - len(SLOT))
#: What OPEN answers for it (ReceivedHeader: source, length, tag).
HEADER_WORD = SOURCE | len(WORDS) << 8 | TAG << 16
#: Staged words PUT writes: index -> (low, high).
STAGED = {0: (0xABCD, 0x1234), 1: (0x5555, 0x6666)}


def memory_count(fragment: Fragment) -> int:
    return isinstance(fragment, MemoryInstance) + sum(memory_count(sub) for sub, _name, _src in fragment.subfragments)


@pytest.mark.parametrize(("separate_staging", "memories"), [(True, 2), (False, 1)])
def test_the_one_ebr_layout_elaborates_to_one_memory(separate_staging: bool, memories: int) -> None:
    mailbox = Mailbox(depth=8, separate_staging=separate_staging)
    assert memory_count(Fragment.get(mailbox, None)) == memories
    assert ("en" in mailbox.staging.signature.members) is not separate_staging


def simulate(mailbox: Mailbox, testbench) -> None:
    simulator = Simulator(mailbox)
    simulator.add_clock(1e-6)
    simulator.add_testbench(testbench)
    simulator.run()


async def eject_slot(ctx, mailbox: Mailbox, busy: list[int]) -> None:
    """Eject SLOT, one flit per cycle; while it does, `put.ready` must stay low (its cycles are logged in `busy`)."""
    for index, flit in enumerate(SLOT):
        ctx.set(mailbox.eject.valid, 1)
        ctx.set(mailbox.eject.payload, {"data": flit, "index": index})
        busy.append(ctx.get(mailbox.put.ready))
        await ctx.tick()
    ctx.set(mailbox.eject.valid, 0)


async def put(ctx, mailbox: Mailbox, index: int) -> int:
    """Write staged word `index`; return the cycles until `ready` (valid held until then, as the unit does)."""
    low, high = STAGED[index]
    ctx.set(mailbox.put.valid, 1)
    ctx.set(mailbox.put.payload, {"index": index, "low": low, "high": high})
    cycles = 0
    while not ctx.get(mailbox.put.ready):
        await ctx.tick()
        cycles += 1
    await ctx.tick()
    ctx.set(mailbox.put.valid, 0)
    return cycles


async def read(ctx, mailbox: Mailbox, op: ReadOp, staging_reads: list[bool]) -> tuple[int, int]:
    """One read (valid held until ready) while the router reads staging flit k in the cycles k with
    `staging_reads[k]`; every staged flit must arrive the cycle after its read. Returns (word, cycles to ready)."""
    staged_flits = [half for index in sorted(STAGED) for half in STAGED[index]]
    ctx.set(mailbox.read.valid, 1)
    ctx.set(mailbox.read.payload, op)
    cycle, asked = 0, None
    while True:
        if asked is not None:
            assert ctx.get(mailbox.staging.data) == staged_flits[asked], f"staging flit {asked} at cycle {cycle}"
        enabled = cycle < len(staging_reads) and staging_reads[cycle]
        asked = cycle % len(staged_flits) if enabled else None
        ctx.set(mailbox.staging.en, enabled)
        ctx.set(mailbox.staging.index, asked or 0)
        if ctx.get(mailbox.read.ready):
            word = ctx.get(mailbox.read_word)
            break
        assert ctx.get(mailbox.read_word) >> 16 == 0, "the word's high half is not 0 outside the ready cycle"
        await ctx.tick()
        cycle += 1
    await ctx.tick()
    ctx.set(mailbox.read.valid, 0)
    ctx.set(mailbox.staging.en, 0)
    if asked is not None:
        assert ctx.get(mailbox.staging.data) == staged_flits[asked]
    await ctx.tick()
    return word, cycle


def test_one_ebr_ejection_never_waits_for_a_put() -> None:
    """A PUT and an ejection start in the same cycle: ejection writes all its flits, the PUT writes its two halves
    after it; the message and the staged word are both intact."""
    mailbox = Mailbox(depth=4, separate_staging=False)

    async def testbench(ctx) -> None:
        low, high = STAGED[1]
        ctx.set(mailbox.put.valid, 1)
        ctx.set(mailbox.put.payload, {"index": 1, "low": low, "high": high})
        busy: list[int] = []
        await eject_slot(ctx, mailbox, busy)
        assert busy == [0] * SLOT_FLITS, "PUT was answered while ejection held the write port"
        assert ctx.get(mailbox.count) == 1
        cycles = 0
        while not ctx.get(mailbox.put.ready):
            await ctx.tick()
            cycles += 1
        assert cycles == 1, "PUT writes its two halves in the first two cycles after the ejection"
        await ctx.tick()
        ctx.set(mailbox.put.valid, 0)
        assert await put(ctx, mailbox, 0) == 1  # without a collision: ready in the second cycle
        assert await read(ctx, mailbox, ReadOp.OPEN, []) == (HEADER_WORD, 2)
        assert (await read(ctx, mailbox, ReadOp.GET, []))[0] == WORDS[0]
        # The staged halfwords, as the router reads them: each arrives the cycle after its read.
        assert (await read(ctx, mailbox, ReadOp.GET, [True] * 4))[0] == WORDS[1]

    simulate(mailbox, testbench)


def test_one_ebr_put_given_up_during_an_ejection_starts_over() -> None:
    """A PUT whose low half is written, then blocked by an ejection and abandoned, writes both halves when repeated."""
    mailbox = Mailbox(depth=4, separate_staging=False)

    async def testbench(ctx) -> None:
        ctx.set(mailbox.put.valid, 1)
        ctx.set(mailbox.put.payload, {"index": 0, "low": 0xDEAD, "high": 0xDEAD})
        await ctx.tick()  # the low half is written
        ctx.set(mailbox.put.valid, 0)
        await eject_slot(ctx, mailbox, [])
        assert await put(ctx, mailbox, 0) == 1
        assert await put(ctx, mailbox, 1) == 1
        assert await read(ctx, mailbox, ReadOp.OPEN, [True, True, True, True]) == (HEADER_WORD, 6)

    simulate(mailbox, testbench)


@pytest.mark.parametrize(
    ("staging_reads", "cycles"),
    [
        ([], 2),  # no collision: ready in the third cycle
        ([True, True, True], 5),  # the read starts after the router's reads
        ([False, True, True], 4),  # low half read, the high half waits two cycles
        ([False, True, False, True], 3),  # the high half waits a cycle; the router reads in the ready cycle
        ([True, False, True, True, False], 5),  # both halves wait
    ],
)
def test_one_ebr_staging_reads_never_wait_for_a_receive(staging_reads: list[bool], cycles: int) -> None:
    """The router reads the staged message while RECV and GET read the queue: every staged flit arrives the cycle
    after its read, and the receive answers the right words once the port is free."""
    mailbox = Mailbox(depth=4, separate_staging=False)

    async def testbench(ctx) -> None:
        await put(ctx, mailbox, 0)
        await put(ctx, mailbox, 1)
        await eject_slot(ctx, mailbox, [])
        assert await read(ctx, mailbox, ReadOp.OPEN, staging_reads) == (HEADER_WORD, cycles)
        assert await read(ctx, mailbox, ReadOp.GET, staging_reads) == (WORDS[0], cycles)
        assert await read(ctx, mailbox, ReadOp.GET, staging_reads) == (WORDS[1], cycles)
        assert ctx.get(mailbox.unread) == 0

    simulate(mailbox, testbench)

"""Reference model of Tessera's on-chip network, mailboxes and message instructions.

Two layers:
- `NocModel`: the slotted ring, cycle by cycle. It is exact for what the network decides (which slot a message
  takes, ACK/NACK, retries, when a message becomes complete in its destination mailbox, when the sender learns of
  the ACK, how much queue space is in use). Instruction timing is not modelled: the caller says in which cycle a
  SEND was accepted and in which cycle a receiver opened a message (`send`, `open`), as the RTL's message unit
  reports them; the RTL-vs-model test replays those cycles and compares every node's mailbox count and send-busy
  flag on every cycle.
- `NodeUnit`: the instruction semantics of one node (results, faults, waiting) on top of a NocModel, in the form
  the tile golden model (`tessera.sim.model.MessageUnit`) expects. It is cycle-approximate: the chip model steps
  the network once per tile step.

docs/network.md explains the protocol these models define.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tessera.firmware.isa import MASK32, Cause
from tessera.hw.noc_layouts import (
    HOST_NODE,
    MAX_TILES,
    MAX_WORDS,
    NODE_BITS,
    SLOT_FLITS,
    TIMEOUT_BITS,
    MessageOp,
    SlotKind,
    permission_index,
    ring_length,
)
from tessera.sim.model import MessageReply


@dataclass(frozen=True)
class Message:
    """One message as software sees it."""

    src: int
    dest: int
    tag: int
    words: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.words) <= MAX_WORDS:
            raise ValueError(f"a message carries 1..{MAX_WORDS} words, not {len(self.words)}")
        if not 0 <= self.tag < 1 << 16:
            raise ValueError(f"tag {self.tag:#x} does not fit 16 bits")
        if any(not 0 <= word <= MASK32 for word in self.words):
            raise ValueError(f"payload {self.words} has a word outside 32 bits")

    @property
    def header_word(self) -> int:
        """What RECV returns for this message (ReceivedHeader)."""
        return self.src | (len(self.words) << 8) | (self.tag << 16)


@dataclass(frozen=True)
class _Flit:
    head: bool  # first flit of a slot: only these carry anything the model needs
    kind: SlotKind = SlotKind.EMPTY
    dest: int = 0
    src: int = 0
    message: Message | None = None  # the message a DATA slot carries


_BODY = _Flit(head=False)


@dataclass
class NodeState:
    """What one node's message unit holds."""

    address: int
    permitted: frozenset[int] = frozenset()  # destination addresses
    staged: list[int] = field(default_factory=list)
    outbound: Message | None = None  # in flight until its ACK
    pending: bool = False  # waiting for an empty slot
    retry_wait: int = 0
    header_read: bool = False  # pending was high on the last flit of the slot before (the header is read)
    queue: deque[Message] = field(default_factory=deque)  # complete, unopened
    arriving: list[tuple[int, Message]] = field(default_factory=list)  # (cycle it completes, message)
    entries_used: int = 0  # mailbox entries taken: open, complete and being filled
    opened: Message | None = None
    unread: list[int] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.queue)

    @property
    def send_busy(self) -> bool:
        return self.outbound is not None


class NocModel:
    """The ring of `num_tiles` tiles plus the host, cycle by cycle (see the module docstring)."""

    def __init__(self, num_tiles: int, *, depth: int = 8, retry_delay: int = 32) -> None:
        if not 1 <= num_tiles <= MAX_TILES:
            raise ValueError(f"tile count {num_tiles} outside 1..{MAX_TILES}")
        self.num_tiles = num_tiles
        self.depth = depth
        self.retry_delay = retry_delay
        self.addresses = [*range(num_tiles), HOST_NODE]
        self.nodes = {address: NodeState(address) for address in self.addresses}
        self.cycle = 0
        length = ring_length(len(self.addresses))
        # Register j starts as flit (-j) mod SLOT_FLITS of an empty slot (see tessera.hw.network.phase_at_reset).
        self._ring = [_Flit(head=True) if j % SLOT_FLITS == 0 else _BODY for j in range(length)]
        self._after_cycle: list[Callable[[], None]] = []
        #: Every message in the order it became complete in its destination mailbox.
        self.delivered: list[Message] = []
        self.nacks = 0

    def node(self, address: int) -> NodeState:
        try:
            return self.nodes[address]
        except KeyError:
            raise ValueError(f"no node with address {address}") from None

    def set_permissions(self, address: int, destinations: Iterable[int]) -> None:
        allowed = frozenset(destinations)
        for dest in allowed:
            if permission_index(dest, self.num_tiles) is None:
                raise ValueError(f"permission for {dest}, which is not a node")
        self.node(address).permitted = allowed

    # Events in the current cycle, as the message unit's ready pulse reports them; they take effect for the next
    # cycle, as the RTL's registers do.

    def send(self, address: int, message: Message) -> None:
        """Node `address` hands `message` to the network in this cycle (it must not have one in flight)."""
        node = self.node(address)
        if node.outbound is not None:
            raise ValueError(f"node {address} sends while a message is in flight")

        def launch() -> None:
            node.outbound = message
            node.pending = True

        self._after_cycle.append(launch)

    def open(self, address: int) -> Message:
        """Node `address` opens its next complete message in this cycle; the previous one's entry is released."""
        node = self.node(address)
        if not node.queue:
            raise ValueError(f"node {address} opens a message from an empty mailbox")
        released = int(node.opened is not None)
        node.opened = node.queue.popleft()
        node.unread = list(node.opened.words)

        def release() -> None:
            node.entries_used -= released

        self._after_cycle.append(release)
        return node.opened

    def step(self) -> None:
        """One clock cycle: every stop acts on the flit arriving at it, then the registers move on."""
        ring = self._ring
        num_nodes = len(self.addresses)
        pending_now = {address: node.pending for address, node in self.nodes.items()}
        moved = [ring[j - 1] if j >= num_nodes else self._stop(self.nodes[self.addresses[j]], ring[j - 1])
                 for j in range(len(ring))]
        for node in self.nodes.values():
            if node.retry_wait:
                if node.retry_wait == 1:
                    node.pending = True
                node.retry_wait -= 1
        for effect in self._after_cycle:
            effect()
        self._after_cycle.clear()
        for index, address in enumerate(self.addresses):
            # As the router: the header flit is read when pending is high and the next flit to arrive is a slot's first.
            self.nodes[address].header_read = pending_now[address] and moved[index - 1].head
        self._ring = moved
        self.cycle += 1
        for node in self.nodes.values():
            while node.arriving and node.arriving[0][0] == self.cycle:
                node.queue.append(node.arriving.pop(0)[1])

    def _stop(self, node: NodeState, flit: _Flit) -> _Flit:
        if not flit.head:
            return flit
        if flit.kind == SlotKind.DATA and flit.dest == node.address:
            message = flit.message
            assert message is not None
            if node.entries_used < self.depth:
                node.entries_used += 1
                # The slot's last flit is written SLOT_FLITS - 1 cycles after the header; it counts the cycle after.
                node.arriving.append((self.cycle + SLOT_FLITS, message))
                self.delivered.append(message)
                return _Flit(head=True, kind=SlotKind.ACK, dest=flit.dest, src=flit.src)
            self.nacks += 1
            return _Flit(head=True, kind=SlotKind.NACK, dest=flit.dest, src=flit.src)
        if flit.kind in (SlotKind.ACK, SlotKind.NACK) and flit.src == node.address:
            if flit.kind == SlotKind.ACK:
                self._after_cycle.append(lambda: setattr(node, "outbound", None))
            else:
                self._after_cycle.append(lambda: setattr(node, "retry_wait", self.retry_delay))
            return _Flit(head=True)
        if flit.kind == SlotKind.EMPTY and node.pending and node.header_read:
            node.pending = False
            assert node.outbound is not None
            return _Flit(head=True, kind=SlotKind.DATA, dest=node.outbound.dest, src=node.address,
                         message=node.outbound)
        return flit

    def idle(self) -> bool:
        """Nothing in flight anywhere (every sent message acknowledged)."""
        return all(node.outbound is None for node in self.nodes.values())


class NodeUnit:
    """One node's message instructions over a NocModel (implements tessera.sim.model.MessageUnit).

    It answers what a tile's core sees on its message port in a chip, so `msg.fault` (MessageOp.FAULT) traps
    with ASSERTION here: in the gateware the tile node (hw/tile_node.py) answers it and the message unit never
    receives it (the unit on its own would call funct3 = 7 illegal).
    """

    def __init__(self, network: NocModel, address: int) -> None:
        self.network = network
        self.state = network.node(address)
        self._deadline: int | None = None  # RECVT's timeout cycle while it waits

    def execute(self, funct3: int, funct7: int, rs1: int, rs2: int) -> MessageReply | None:
        op = MessageOp.decode(funct3, funct7)
        if op is None:
            return MessageReply(fault=True, cause=Cause.ILLEGAL_INSN)
        if op == MessageOp.FAULT:
            return MessageReply(fault=True, cause=Cause.ASSERTION)
        node = self.state
        if op == MessageOp.PUT:
            if len(node.staged) == MAX_WORDS:
                return MessageReply(fault=True, cause=Cause.MESSAGE_FAULT)
            if node.send_busy:
                return None
            node.staged.append(rs1)
            return MessageReply(0)
        if op in (MessageOp.SEND, MessageOp.TRYSEND):
            if rs1 >> NODE_BITS or rs1 not in node.permitted:
                return MessageReply(fault=True, cause=Cause.SEND_DENIED)
            if not node.staged or rs2 >> 16:
                return MessageReply(fault=True, cause=Cause.MESSAGE_FAULT)
            if node.send_busy:
                return MessageReply(0) if op == MessageOp.TRYSEND else None
            self.network.send(node.address, Message(node.address, rs1, rs2, tuple(node.staged)))
            node.staged.clear()
            return MessageReply(1)
        if op in (MessageOp.RECV, MessageOp.TRYRECV, MessageOp.RECVT):
            if op == MessageOp.RECVT and rs1 >> TIMEOUT_BITS:
                return MessageReply(fault=True, cause=Cause.MESSAGE_FAULT)
            if node.queue:
                self._deadline = None
                return MessageReply(self.network.open(node.address).header_word)
            if op == MessageOp.TRYRECV:
                return MessageReply(0)
            if op == MessageOp.RECVT:
                if self._deadline is None:
                    self._deadline = self.network.cycle + rs1
                elif self.network.cycle >= self._deadline:
                    self._deadline = None
                    return MessageReply(0)
            return None
        if op == MessageOp.GET:
            if not node.unread:
                return MessageReply(fault=True, cause=Cause.MESSAGE_FAULT)
            return MessageReply(node.unread.pop(0))
        if op == MessageOp.COUNT:
            return MessageReply(node.count)
        assert op == MessageOp.STATUS
        return MessageReply(int(node.send_busy) | (len(node.staged) << 4) | (len(node.unread) << 8))

    def abandon(self) -> None:
        """The tile was halted while waiting: forget a pending RECVT timeout."""
        self._deadline = None

"""Runs a compiled service on the golden tile model with a scripted message unit.

The counterpart of `tessera.os.service_runner.ServiceRunner` with the same driving interface (`deliver`,
`start`, `sent`, `fault`, `state_words`; `field_values` for Python services), so differential tests feed both the
same messages and compare. It also measures: code size and instructions per handled message
(`instructions_per_message`). `TileRun` runs any tile image (a C, assembly or ELF service from a runtime image);
`TileService` compiles a Python service first.

`ScriptedMessageUnit` implements the custom-0 message instructions of docs/network.md on a Python queue. Time is
abstract, as in the runner: a timed receive with an empty mailbox times out at once. A blocking receive with an
empty mailbox leaves the tile SLEEPING; `TileService` then considers the tile idle.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

from tessera.firmware.isa import Cause, TileState
from tessera.hw.noc_layouts import MAX_WORDS, NODE_BITS, TIMEOUT_BITS, MessageOp
from tessera.os.image import StateField
from tessera.os.service_api import FaultReason
from tessera.os.service_build import ServiceImage, build_service
from tessera.os.service_runner import Outgoing
from tessera.sim.model import MessageReply, TileModel

MASK32 = 0xFFFF_FFFF
#: funct3 of `msg.fault`, which traps with Cause.ASSERTION (firmware/runtime.s).
FAULT_FUNCT3 = MessageOp.FAULT.funct3
#: Steps the model runs between checks for idleness.
_CHUNK = 2000


@dataclass
class ScriptedMessageUnit:
    """A message unit over Python queues; `permitted` = the nodes the tile may send to (None = all)."""

    permitted: frozenset[int] | None = None
    mailbox: deque[tuple[int, int, tuple[int, ...]]] = field(default_factory=deque)
    sent: list[Outgoing] = field(default_factory=list)
    staged: list[int] = field(default_factory=list)
    unread: deque[int] = field(default_factory=deque)
    waiting: bool = False  # a blocking receive found the mailbox empty

    def execute(self, funct3: int, funct7: int, rs1: int, rs2: int) -> MessageReply | None:
        if funct3 == FAULT_FUNCT3 and funct7 == 0:
            return MessageReply(fault=True, cause=Cause.ASSERTION)
        op = MessageOp.decode(funct3, funct7)
        if op is MessageOp.PUT:
            if len(self.staged) == MAX_WORDS:
                return MessageReply(fault=True, cause=Cause.MESSAGE_FAULT)
            self.staged.append(rs1)
            return MessageReply(len(self.staged))
        if op in (MessageOp.SEND, MessageOp.TRYSEND):
            if rs1 >> NODE_BITS or (self.permitted is not None and rs1 not in self.permitted):
                return MessageReply(fault=True, cause=Cause.SEND_DENIED)
            if not self.staged or rs2 >> 16:
                return MessageReply(fault=True, cause=Cause.MESSAGE_FAULT)
            self.sent.append(Outgoing(rs1, rs2, tuple(self.staged)))
            self.staged = []
            return MessageReply(1)
        if op in (MessageOp.RECV, MessageOp.TRYRECV, MessageOp.RECVT):
            if op is MessageOp.RECVT and rs1 >> TIMEOUT_BITS:
                return MessageReply(fault=True, cause=Cause.MESSAGE_FAULT)
            if self.mailbox:
                self.waiting = False
                sender, tag, words = self.mailbox.popleft()
                self.unread = deque(words)
                return MessageReply(sender | len(words) << 8 | tag << 16)
            if op is MessageOp.RECV:
                self.waiting = True
                return None
            return MessageReply(0)
        if op is MessageOp.GET:
            if not self.unread:
                return MessageReply(fault=True, cause=Cause.MESSAGE_FAULT)
            return MessageReply(self.unread.popleft())
        if op is MessageOp.COUNT:
            return MessageReply(len(self.mailbox))
        return MessageReply(fault=True, cause=Cause.ILLEGAL_INSN)


@dataclass(frozen=True)
class TileFault:
    """How the tile stopped: its cause, pc, and for ASSERTION the FaultReason from a0."""

    cause: Cause
    pc: int
    reason: FaultReason | None


class TileRun:
    """A tile image (runtime and service from address 0) on a TileModel, driven like ServiceRunner."""

    def __init__(self, memory: bytes, state_fields: tuple[StateField, ...] = (), *, mem_bytes: int = 1024,
                 node: int = 0, permitted: frozenset[int] | None = None, max_steps: int = 2_000_000) -> None:
        self.state_fields = state_fields
        self.unit = ScriptedMessageUnit(permitted)
        self.model = TileModel(mem_bytes, tile_id=node, message_unit=self.unit)
        self.model.load_bytes(memory)
        self.max_steps = max_steps
        self.fault: TileFault | None = None
        self.started = False
        self.instructions_per_message: list[int] = []

    @property
    def sent(self) -> list[Outgoing]:
        return self.unit.sent

    def deliver(self, sender: int, tag: int, *words: int) -> None:
        self.unit.mailbox.append((sender, tag, tuple(w & MASK32 for w in words)))
        if self.started:
            retired = self.pump()
            if self.fault is None:
                self.instructions_per_message.append(retired)

    def start(self) -> None:
        self.started = True
        self.pump()

    def pump(self) -> int:
        """Run until the tile waits on an empty mailbox or stops; return the instructions retired."""
        model, unit = self.model, self.unit
        before = model.instret
        steps = 0
        while self.fault is None and not (model.state is TileState.SLEEPING and unit.waiting and not unit.mailbox):
            model.run(_CHUNK)
            steps += _CHUNK
            if model.state is TileState.TRAPPED:
                cause = Cause(model.cause)
                reason = FaultReason(model.regs[10]) if cause is Cause.ASSERTION else None
                self.fault = TileFault(cause, model.pc, reason)
            elif steps > self.max_steps:
                raise TimeoutError(f"the service ran {self.max_steps} steps without waiting for a message")
        return model.instret - before

    def state_words(self) -> list[int]:
        """The words of the state fields, in address order (what `snapshot()` sends)."""
        memory = self.model.mem
        return [int.from_bytes(memory[address:address + 4], "little") for state in self.state_fields
                for address in range(state.address, state.address + state.size, 4)]


class TileService(TileRun):
    """A Python service, compiled, on a TileModel."""

    def __init__(self, source: str, filename: str = "<service>", *, mem_bytes: int = 1024,
                 names: Mapping[str, int] | None = None, node: int = 0,
                 permitted: frozenset[int] | None = None, max_steps: int = 2_000_000) -> None:
        self.image: ServiceImage = build_service(source, filename, mem_bytes, names)
        memory = b"".join(word.to_bytes(4, "little") for word in self.image.words())
        super().__init__(memory, self.image.state_fields, mem_bytes=mem_bytes, node=node, permitted=permitted,
                         max_steps=max_steps)

    def field_values(self) -> dict[str, list[int]]:
        """Every field as unsigned words (bytes as 0..255), read from the tile's memory."""
        values: dict[str, list[int]] = {}
        memory = self.model.mem
        for f in self.image.program.fields.values():
            address = self.image.field_address(f.name)
            if f.kind == "bytes":
                values[f.name] = list(memory[address:address + f.size])
            else:
                values[f.name] = [int.from_bytes(memory[address + 4 * i:address + 4 * i + 4], "little")
                                  for i in range(f.size)]
        return values

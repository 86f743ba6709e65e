"""Reference model of hw/fault_reporter.py's FaultReporter, cycle by cycle at its ports.

The reporter turns an entry of the core into TRAPPED (any cause but BREAKPOINT, with a valid supervisor) into one
DOWN message built through the node's message unit, whose port it owns meanwhile (while idle the port carries the
core's requests unchanged). The model keeps the report as the index of its operation: PUT cause, PUT pc, PUT detail
(each read from the inputs of the current cycle), SEND to the supervisor with DOWN_TAG. The staged words are
discarded in the cycle the report starts. An operation ends when the unit answers (ready); the report goes on only
if the unit did not refuse it and the tile is still in the stay in TRAPPED the report was started for; otherwise it
is abandoned, and until then the staged words are discarded in every cycle (unless the operation is the SEND). A
stop is looked at only while no report is under way, once per stay in TRAPPED.
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.firmware.isa import Cause, TileState
from tessera.hw.down_message import DETAIL_BITS, DOWN_TAG
from tessera.hw.noc_layouts import MessageOp


@dataclass(frozen=True)
class ReporterInputs:
    """The reporter's inputs during one cycle."""

    state: int
    cause: int
    pc: int
    detail: int  # the tile's last msg.fault reason: sent for an ASSERTION stop, 0 is sent otherwise
    supervisor: int
    supervisor_valid: bool


@dataclass(frozen=True)
class Request:
    """One side of a message port during one cycle: what a core (or the reporter) asks of the unit."""

    valid: bool
    funct3: int = 0
    funct7: int = 0
    rs1: int = 0
    rs2: int = 0

    @classmethod
    def of(cls, op: MessageOp, rs1: int, rs2: int) -> Request:
        return cls(True, op.funct3, op.funct7, rs1, rs2)


@dataclass(frozen=True)
class ReporterOutputs:
    """What the reporter drives during one cycle: `net` = what the unit sees (while busy the report's operation,
    valid; while idle the core's request, all of it); the core's `ready` is the unit's while idle, 0 while busy."""

    busy: bool
    discard: bool
    net: Request


#: The report's operations in order: the PUTs' words (`DownWord` order), then the SEND.
PUT_CAUSE, PUT_PC, PUT_DETAIL, SEND_TO_SUPERVISOR = range(4)


class FaultReporterModel:
    """`outputs(inputs, core)` for the current cycle, then `clock(inputs, ready, fault)` at its end."""

    def __init__(self) -> None:
        self._taken = False  # this stay in TRAPPED has been looked at
        self._step: int | None = None  # the operation under way, None = idle

    def _staying(self, inputs: ReporterInputs) -> bool:
        return inputs.state == TileState.TRAPPED and self._taken

    def _starts(self, inputs: ReporterInputs) -> bool:
        return (self._step is None and inputs.state == TileState.TRAPPED and not self._taken
                and inputs.supervisor_valid and inputs.cause != Cause.BREAKPOINT)

    def outputs(self, inputs: ReporterInputs, core: Request) -> ReporterOutputs:
        step = self._step
        if step is None:
            return ReporterOutputs(busy=False, discard=self._starts(inputs), net=core)
        discard = step != SEND_TO_SUPERVISOR and not self._staying(inputs)
        if step == SEND_TO_SUPERVISOR:
            return ReporterOutputs(True, discard, Request.of(MessageOp.SEND, inputs.supervisor, DOWN_TAG))
        detail = inputs.detail & ((1 << DETAIL_BITS) - 1) if inputs.cause == Cause.ASSERTION else 0
        word = (inputs.cause, inputs.pc, detail)[step]
        return ReporterOutputs(True, discard, Request.of(MessageOp.PUT, word, DOWN_TAG))

    def clock(self, inputs: ReporterInputs, ready: bool, fault: bool) -> None:
        """The cycle ends; `ready`/`fault` are the unit's answer to this cycle's operation (if any)."""
        trapped = inputs.state == TileState.TRAPPED
        idle = self._step is None
        if idle:
            if self._starts(inputs):
                self._step = PUT_CAUSE
        elif ready:
            goes_on = self._staying(inputs) and not fault and self._step != SEND_TO_SUPERVISOR
            self._step = self._step + 1 if goes_on else None
        self._taken = trapped and (self._taken or idle)

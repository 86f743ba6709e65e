"""Reference model of hw/fault_reporter.py's FaultReporter, cycle by cycle at its ports.

The reporter turns each entry of the core into TRAPPED (any cause but BREAKPOINT, with a valid supervisor) into
one DOWN message built through the node's message unit, whose port it owns meanwhile (while idle the port carries
the core's requests unchanged). The model keeps the report as a queue of steps:
`open` (discard staged words, widen permissions), three PUTs (cause, pc, detail), SEND to the supervisor with
DOWN_TAG, `restore` (permissions back). An operation the unit refuses ends the report at `restore`. A stop is
looked at only while no report is under way, once per stay in TRAPPED.
"""

from __future__ import annotations

from collections import deque
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
    detail: int  # as the node keeps it: 0 unless the stop is an ASSERTION
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
    """What the reporter drives during one cycle: `net` = what the unit sees (its operands only mean something when
    valid while busy; while idle it is the core's request, all of it); the core's `ready` is the unit's while idle,
    0 while busy."""

    busy: bool
    discard: bool
    widen: bool
    restore: bool
    net: Request


OPEN, RESTORE = "open", "restore"
SEND_TO_SUPERVISOR = "send"


class FaultReporterModel:
    """`outputs(inputs)` for the current cycle, then `clock(inputs, ready, fault)` at its end."""

    def __init__(self) -> None:
        self._taken = False
        self._steps: deque[object] = deque()  # OPEN, (MessageOp.PUT, word), SEND_TO_SUPERVISOR, RESTORE

    @property
    def idle(self) -> bool:
        return not self._steps

    def outputs(self, inputs: ReporterInputs, core: Request) -> ReporterOutputs:
        if not self._steps:
            return ReporterOutputs(busy=False, discard=False, widen=False, restore=False, net=core)
        step = self._steps[0]
        if step == OPEN:
            return ReporterOutputs(busy=True, discard=True, widen=True, restore=False, net=Request(False))
        if step == RESTORE:
            return ReporterOutputs(busy=True, discard=False, widen=False, restore=True, net=Request(False))
        if step == SEND_TO_SUPERVISOR:
            return ReporterOutputs(True, False, False, False, Request.of(MessageOp.SEND, inputs.supervisor, DOWN_TAG))
        _, word = step
        return ReporterOutputs(True, False, False, False, Request.of(MessageOp.PUT, word, DOWN_TAG))

    def clock(self, inputs: ReporterInputs, ready: bool, fault: bool) -> None:
        """The cycle ends; `ready`/`fault` are the unit's answer to this cycle's operation (if any)."""
        trapped = inputs.state == TileState.TRAPPED
        if not self._steps:
            if trapped and not self._taken:
                if inputs.supervisor_valid and inputs.cause != Cause.BREAKPOINT:
                    detail = inputs.detail & ((1 << DETAIL_BITS) - 1)
                    self._steps.extend([OPEN, (MessageOp.PUT, inputs.cause), (MessageOp.PUT, inputs.pc),
                                        (MessageOp.PUT, detail), SEND_TO_SUPERVISOR, RESTORE])
                self._taken = True
        else:
            step = self._steps[0]
            if step in (OPEN, RESTORE):
                self._steps.popleft()
            elif ready and fault:
                self._steps.clear()
                self._steps.append(RESTORE)
            elif ready:
                self._steps.popleft()
        if not trapped:
            self._taken = False

"""Hot code replacement (`tessera reload IMAGE SERVICE`): one service's code is swapped on a running chip at a
message boundary, its state is handed over, and no message to it is lost.

How the pieces of the chip make this safe (docs/architecture.md, "Restart"; docs/network.md, "Mailbox"):
- While the tile is stopped its message unit keeps running: messages for it stay queued in its mailbox, and once
  the mailbox is full every sender's message is NACKed and retried by the sender's hardware. Senders are held
  back, nothing is dropped, per-pair order holds (one message in flight per sender).
- RESET resets only the core: queued messages stay queued, a message in flight is still delivered. The message
  the tile had opened is released by its next receive, i.e. dropped. So the swap must happen when the opened
  message has been handled completely: at the runtime's dispatch loop (firmware/runtime.s, `rt_dispatch`).

The message boundary (`reach_boundary`): the host halts the tile, writes EBREAK over the first instruction of
`rt_dispatch` and lets the tile run on. It finishes the message in hand and stops there (TRAPPED, BREAKPOINT, which
is not reported DOWN). A tile that waits in the dispatch loop's own receive (an idle service) is at the boundary
already; one waiting in a receive inside a handler (`receive()`, `call()`) is not. The host tells them apart by
the return address: it has the tile store `ra` and stop (three instructions written over `rt_dispatch`'s tail and
the receive, all restored before the tile runs again). A HALT abandons a waiting message instruction without side
effects, so halting and running again never changes what the service does. At the boundary the tile sends the
host a fence message (`_fence`): everything the old code sent the host arrives before it.

The state (`hand_over`): the image names each service's state fields (`TileImage.state_fields`: name, address,
size). Every field of the new build whose name the old build also has gets the old value (the first
min(old, new) bytes: a grown array keeps its old elements); new fields keep their initial values, dropped
fields are gone. The values are written after the new code is loaded and before it runs (`carry_over` lays them
out; persistent services restore their snapshots with it too). For a Python build the host also points header
word 0 at the build's upgrade entry (`start_upgrade`), so the runtime calls its `upgrade()` instead of `init()`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from tessera.firmware.isa import (
    Cause,
    MessageOp,
    Opcode,
    TileState,
    encode_i,
    encode_j,
    encode_r,
    encode_s,
    encode_u,
    imm_j,
)
from tessera.os.chip import Chip, Incoming, cause_name
from tessera.os.errors import TesseraError
from tessera.os.codegen_support import FENCE_TAG, UPGRADE_ENTRY_OFFSET
from tessera.os.image import RuntimeImage, StateField, TileImage
from tessera.os.manifest import SourceKind
from tessera.os.protocol import TileStatus

#: How long a service may take to finish the message in hand before `reload` gives up (and leaves it running).
BOUNDARY_TIMEOUT_S = 10.0
POLL_S = 0.02

EBREAK = encode_i(Opcode.SYSTEM, 0, 0, 0, 1)
_RA, _A1, _A2 = 1, 11, 12
_STORE_WORD = 2  # funct3 of SW


class ReloadError(TesseraError):
    """A reload that was refused or could not reach the service's message boundary."""


@dataclass(frozen=True)
class RuntimePoints:
    """Addresses in the tile runtime (firmware/runtime.s) that the boundary search uses."""

    runtime: bytes  # the runtime's bytes at address 0
    header: int  # runtime_end: the service header's address
    dispatch: int  # rt_dispatch: the loop head; a message is handled completely when the tile gets here
    receive: int  # rt_receive: its first instruction is the receive the loop (and handlers) wait in

    @property
    def loop_return(self) -> int:
        """The return address of the dispatch loop's call of rt_receive (the instruction after `jal`)."""
        return self.dispatch + 8


def runtime_points() -> RuntimePoints:
    from tessera.os.service_build import runtime

    program = runtime()
    return RuntimePoints(bytes(program.image), program.symbols["runtime_end"], program.symbols["rt_dispatch"],
                         program.symbols["rt_receive"])


def check_compatible(running: RuntimeImage, new: RuntimeImage, service: str, new_name: str) -> TileImage:
    """The new build's tile of `service`, if `new` may replace the running image's `service`; else ReloadError
    with one line naming the first difference."""
    def refuse(why: str) -> ReloadError:
        return ReloadError(f"{new_name} cannot replace {service} on the running system: {why}")

    if new.chip != running.chip:
        raise refuse(f"it was built for another chip ({new.chip} instead of {running.chip})")
    old_names = {(entry.name, entry.address, entry.kind) for entry in running.names}
    new_names = {(entry.name, entry.address, entry.kind) for entry in new.names}
    if old_names != new_names:
        changed = sorted({name for name, _, _ in old_names ^ new_names})
        raise refuse(f"the names differ ({', '.join(changed)}): rebuild it with the running manifest's services "
                     f"and placement")
    old = next(tile for tile in running.tiles if tile.service == service)
    replacement = next((tile for tile in new.tiles if tile.service == service), None)
    if replacement is None or replacement.tile != old.tile:
        raise refuse(f"it does not put {service} on tile {old.tile}")
    if old.bare or replacement.bare:
        raise refuse(f"{service} is a bare image: without the tile runtime there is no message boundary to swap at")
    if not old.memory.startswith(runtime_points().runtime):
        raise refuse(f"the running {service} was built with another tile runtime than this tessera's")
    return replacement


def reach_boundary(chip: Chip, tile: int, on_message: Callable[[Incoming], None],
                   timeout: float = BOUNDARY_TIMEOUT_S) -> None:
    """Stop `tile` at its message boundary (see the module docstring). Messages the chip pushes meanwhile go to
    `on_message`. On timeout or a fault the breakpoint is taken out again, the tile keeps running its code, and
    ReloadError says why."""
    points = runtime_points()
    chip.halt(tile)
    status = chip.status(tile)
    if status.state == TileState.TRAPPED:
        raise ReloadError(f"tile {tile} is stopped ({cause_name(status.cause)} at {status.pc:#x}): nothing to reload")
    original = chip.read_memory(tile, points.dispatch, 1)[0]
    chip.write_memory(tile, points.dispatch, EBREAK.to_bytes(4, "little"))
    probed: int | None = None  # messages_in when the tile was last found waiting in a handler's receive
    went_down: list[Incoming] = []
    deadline = time.monotonic() + timeout
    while True:
        # the tile is halted (or trapped) here
        if _at_breakpoint(status, points):
            return _fence(chip, tile, points.dispatch + 4, on_message, chip.info.host_node)
        if status.pc == points.receive and probed != status.messages_in:
            if _waits_in_loop(chip, tile, points, on_message):
                return _fence(chip, tile, points.receive, on_message, chip.info.host_node)
            probed = status.messages_in  # probe each new wait once: a handler may receive many times
        if time.monotonic() >= deadline:
            chip.write_memory(tile, points.dispatch, original.to_bytes(4, "little"))
            chip.run(tile)
            raise ReloadError(f"tile {tile} did not finish its message within {timeout:g} s: not reloaded, it "
                              f"keeps running its code")
        chip.run(tile)
        while True:
            for message in chip.poll(POLL_S):
                if message.is_down and message.source == tile:
                    went_down.append(message)
                on_message(message)
            if went_down:
                raise ReloadError(f"tile {tile} went down ({went_down[0].down().cause_name}) while finishing its "
                                  f"message: its supervisor handles it; not reloaded")
            status = chip.status(tile)
            waiting = status.state == TileState.SLEEPING and status.pc == points.receive
            if _at_breakpoint(status, points) or time.monotonic() >= deadline or \
                    (waiting and probed != status.messages_in):
                break
        chip.halt(tile)
        status = chip.status(tile)


def _at_breakpoint(status: TileStatus, points: RuntimePoints) -> bool:
    return status.state == TileState.TRAPPED and status.cause == Cause.BREAKPOINT and status.pc == points.dispatch + 4


def _waits_in_loop(chip: Chip, tile: int, points: RuntimePoints, on_message: Callable[[Incoming], None]) -> bool:
    """The halted `tile` stands at the receive in rt_receive: was rt_receive called by the dispatch loop (then it
    is at the boundary) or by a handler? Runs `sw ra, A; ebreak` placed just before the receive (A = the store's
    own address), reached by a jump written over the receive; restores all three words. The tile is left halted
    at the receive (or, if in the loop, trapped just before it)."""
    probe = points.receive - 8
    saved = chip.read_memory(tile, probe, 3)
    patch = (encode_s(Opcode.STORE, _STORE_WORD, 0, _RA, probe), EBREAK, encode_j(Opcode.JAL, 0, -8))
    chip.write_memory(tile, probe, b"".join(word.to_bytes(4, "little") for word in patch))
    chip.run(tile)
    deadline = time.monotonic() + BOUNDARY_TIMEOUT_S
    while (status := chip.status(tile)).state != TileState.TRAPPED:
        for message in chip.poll(POLL_S):
            on_message(message)
        if time.monotonic() >= deadline:
            raise ReloadError(f"tile {tile} did not stop at the return-address probe (pc {status.pc:#x})")
    return_address = chip.read_memory(tile, probe, 1)[0]
    chip.write_memory(tile, probe, b"".join(word.to_bytes(4, "little") for word in saved))
    if status.cause != Cause.BREAKPOINT or status.pc != points.receive:
        raise ReloadError(f"tile {tile} stopped with {cause_name(status.cause)} at {status.pc:#x} during the "
                          f"return-address probe: not reloaded")
    return return_address == points.loop_return


def _fence(chip: Chip, tile: int, pc: int, on_message: Callable[[Incoming], None], host: int) -> None:
    """The tile stands at its boundary (trapped at `pc`): have it send the host one FENCE_TAG message and stop, and
    hand every message that arrives before the fence to `on_message`. A pair's messages arrive in order, so once
    the fence is here the old code's messages to the host (logs, output, snapshots) have all been handled: none of
    them is mistaken for the new build's. The routine overwrites runtime code from `pc`; the tile is reloaded."""
    routine = (
        encode_i(Opcode.OP_IMM, _A1, 0, 0, host),  # addi a1, zero, host
        encode_u(Opcode.LUI, _A2, (FENCE_TAG + 0x800) >> 12),  # a2 = FENCE_TAG
        encode_i(Opcode.OP_IMM, _A2, 0, _A2, ((FENCE_TAG & 0xFFF) ^ 0x800) - 0x800),
        encode_r(Opcode.CUSTOM0, 0, MessageOp.PUT.funct3, 0, 0, MessageOp.PUT.funct7),  # msg.put zero
        encode_r(Opcode.CUSTOM0, 0, MessageOp.SEND.funct3, _A1, _A2, MessageOp.SEND.funct7),  # msg.send a1, a2
        EBREAK,
    )
    chip.write_memory(tile, pc, b"".join(word.to_bytes(4, "little") for word in routine))
    chip.run(tile)
    deadline = time.monotonic() + BOUNDARY_TIMEOUT_S
    while True:
        for index, message in enumerate(messages := chip.poll(POLL_S)):
            if message.source == tile and message.tag == FENCE_TAG:
                chip.inbox.extendleft(reversed(messages[index + 1:]))  # the others' messages, for the runner
                return
            on_message(message)
        if time.monotonic() >= deadline:
            status = chip.status(tile)
            raise ReloadError(f"tile {tile}: its fence message did not arrive within {BOUNDARY_TIMEOUT_S:g} s "
                              f"(state {TileState(status.state).name.lower()}, pc {status.pc:#x}): not reloaded")


@dataclass(frozen=True)
class Handover:
    """The state written into the new build: word address -> word, and which fields it covers."""

    words: dict[int, int]
    kept: tuple[str, ...]  # fields handed over
    new: tuple[str, ...]  # fields only the new build has (initial values)
    dropped: tuple[str, ...]  # fields only the old build had
    #: Written with the state, not part of it: header word 0 pointed at the upgrade entry (`start_upgrade`).
    start: dict[int, int] = field(default_factory=dict)
    upgrade: bool = False  # the new build has an upgrade hook, which runs instead of init

    def summary(self) -> str:
        size = 4 * len(self.words)
        parts = [f"state handed over ({len(self.kept)} fields, {size} bytes"
                 + (f": {', '.join(self.kept)})" if self.kept else ")")]
        if self.new:
            parts.append(f"new fields {', '.join(self.new)} start from their initial values")
        if self.dropped:
            parts.append(f"dropped fields {', '.join(self.dropped)}")
        if self.upgrade:
            parts.append("upgrade() runs instead of init()")
        return "; ".join(parts)


def hand_over(chip: Chip, old: TileImage, new: TileImage) -> Handover:
    """Read the old build's state fields from the (stopped) tile and lay them out as the new build has them."""
    wanted = {state.name for state in new.state_fields}
    values = {state.name: _read_field(chip, old.tile, state) for state in old.state_fields if state.name in wanted}
    handover = carry_over(values, old.state_fields, new)
    start, upgrade = start_upgrade(new)
    return replace(handover, start=start, upgrade=upgrade)


def start_upgrade(new: TileImage) -> tuple[dict[int, int], bool]:
    """What makes the runtime start the new build at its upgrade entry instead of init: header word 0 pointed at
    the entry after the one it names (codegen's start entries; Python builds only: C and assembly have no upgrade
    hook and start with init). Returns ({header address: entry}, whether the build defines upgrade at all)."""
    if new.kind is not SourceKind.PYTHON:
        return {}, False
    header = runtime_points().header
    init_entry = int.from_bytes(new.memory[header:header + 4], "little")
    upgrade_entry = init_entry + UPGRADE_ENTRY_OFFSET
    init_word, upgrade_word = (int.from_bytes(new.memory[a:a + 4], "little") for a in (init_entry, upgrade_entry))
    return {header: upgrade_entry}, _jump_target(init_word, init_entry) != _jump_target(upgrade_word, upgrade_entry)


def _jump_target(word: int, pc: int) -> int | None:
    """Where a start entry goes: a `j` instruction's target, None for `ret` (no init / no upgrade)."""
    return pc + imm_j(word) if word & 0x7F == Opcode.JAL else None


def _read_field(chip: Chip, tile: int, state: StateField) -> bytes:
    first = state.address & ~3
    count = (state.address + state.size - first + 3) // 4
    raw = b"".join(word.to_bytes(4, "little") for word in chip.read_memory(tile, first, count))
    return raw[state.address - first:state.address - first + state.size]


def carry_over(values: Mapping[str, bytes], old_fields: Sequence[StateField], new: TileImage) -> Handover:
    """The state of a build whose fields were `old_fields`, `values` (field name -> its bytes; fields without a
    value are not carried), laid out as the `new` build has its fields: by name, the first min(old, new) bytes of
    each (a grown array keeps its elements), new fields at their initial values. Shared by `tessera reload`
    (values read from the tile) and persistent services (values from the saved snapshot)."""
    new_memory = bytearray(new.memory)
    kept: list[str] = []
    words: dict[int, int] = {}
    for state in new.state_fields:
        value = values.get(state.name)
        if value is None:
            continue
        size = min(state.size, len(value))
        new_memory[state.address:state.address + size] = value[:size]
        for address in range(state.address & ~3, state.address + size, 4):
            words[address] = int.from_bytes(new_memory[address:address + 4].ljust(4, b"\0"), "little")
        kept.append(state.name)
    old_names = {state.name for state in old_fields}
    new_names = {state.name for state in new.state_fields}
    return Handover(words, tuple(kept), tuple(f.name for f in new.state_fields if f.name not in old_names),
                    tuple(f.name for f in old_fields if f.name not in new_names))

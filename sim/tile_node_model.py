"""Reference model of what hw/tile_node.py's TileNode adds to its Tile and MessageUnit (docs/architecture.md).

The node's own rules, at the level of whole events: the host's configuration registers (permissions,
supervisor, watchdog period), msg.fault, the DOWN message a stop produces, the watchdog's expiry window, and the
status counters. `tessera.sim.model.TileModel` and `tessera.sim.noc_model` model the tile and the unit.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tessera.firmware.isa import Cause
from tessera.hw.down_message import DETAIL_BITS, DOWN_TAG
from tessera.hw.noc_layouts import HOST_NODE
from tessera.hw.tile_node import WATCHDOG_BITS, WATCHDOG_SHIFT
from tessera.os.protocol import ConfigRegister


@dataclass
class TileNodeModel:
    num_tiles: int
    counter_bits: int = 16
    retired_bits: int = 32
    permissions: int = 0  # bit t: tile t, bit num_tiles: the host
    supervisor: int | None = None
    watchdog_steps: int = 0  # period in steps of 2**WATCHDOG_SHIFT cycles; 0 = off
    messages_in: int = 0
    messages_out: int = 0
    retired: int = 0
    detail: int = 0  # msg.fault's reason, kept for the DOWN message
    downs: list[tuple[int, int, tuple[int, int, int]]] = field(default_factory=list)

    # -- the host's registers ---------------------------------------------------------------------------------

    def write_config(self, register: ConfigRegister, value: int) -> None:
        if register is ConfigRegister.PERMISSIONS:
            self.permissions = value & ((1 << (self.num_tiles + 1)) - 1)
        elif register is ConfigRegister.SUPERVISOR:
            self.supervisor = value if value == HOST_NODE or value < self.num_tiles else None
        else:
            steps = -(-value // (1 << WATCHDOG_SHIFT))
            self.watchdog_steps = min(steps, (1 << WATCHDOG_BITS) - 1)

    def may_send(self, dest: int) -> bool:
        bit = self.num_tiles if dest == HOST_NODE else dest
        return 0 <= bit <= self.num_tiles and bool(self.permissions >> bit & 1)

    def watchdog_window(self) -> tuple[int, int] | None:
        """Cycles from the last restart of the count to the expiry: (earliest, latest), or None when off."""
        if self.watchdog_steps == 0:
            return None
        period = self.watchdog_steps << WATCHDOG_SHIFT
        return period - (1 << WATCHDOG_SHIFT) + 1, period

    # -- the tile's events ------------------------------------------------------------------------------------

    def message_fault(self, funct7: int, rs1: int) -> Cause:
        """msg.fault (custom-0 funct3 7): the cause it traps with; funct7 0 keeps rs1's low bits for DOWN."""
        if funct7 != 0:
            return Cause.ILLEGAL_INSN
        self.detail = rs1 & ((1 << DETAIL_BITS) - 1)
        return Cause.ASSERTION

    def stopped(self, cause: Cause, pc: int) -> None:
        """The core entered TRAPPED: a DOWN message to the supervisor, unless none is set or it is a breakpoint."""
        if self.supervisor is None or cause is Cause.BREAKPOINT:
            return
        detail = self.detail if cause is Cause.ASSERTION else 0
        self.downs.append((self.supervisor, DOWN_TAG, (int(cause), pc, detail)))

    def opened(self) -> None:
        self.messages_in = (self.messages_in + 1) % (1 << self.counter_bits)

    def sent(self) -> None:
        self.messages_out = (self.messages_out + 1) % (1 << self.counter_bits)

    def retire(self, count: int = 1) -> None:
        self.retired = (self.retired + count) % (1 << self.retired_bits)

    def reset_pc(self) -> None:
        """RESET: the counters start again with the program (configuration and queued messages stay)."""
        self.messages_in = self.messages_out = self.retired = 0

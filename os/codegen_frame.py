"""Code generation for one function, the frame part: where a function's locals live and how lines are emitted.

`Layout` places a service in a tile; `FrameGen` is the base of the generator of one function
(`tessera.os.codegen.FunctionGen`): it gives each local a home (a register, or a stack slot past the registers),
sizes the stack frame, writes the prologue and epilogue, and offers the emission helpers the statement,
expression and call parts (`codegen_statements`, `codegen_expressions`, `codegen_calls`) share.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass

from tessera.os.codegen_analysis import assigns, fold, is_call_to, recursive_functions
from tessera.os.codegen_support import ARGS, HEADER_BYTES, LEAF_HOMES, MSG_BYTES, SAVED, TEMPS
from tessera.os.service_api import FaultReason, ServiceFault
from tessera.os.service_lang import INT, MSG, CompileError, Function, Program

@dataclass(frozen=True)
class Layout:
    """Where a service goes in a tile: after the runtime, stack from the top of memory down."""

    mem_bytes: int
    service_base: int
    runtime_symbols: Mapping[str, int]

    @property
    def data_base(self) -> int:
        return self.service_base + HEADER_BYTES

    @property
    def dispatch_message(self) -> int:
        """Address of the message `handle` is handling: the runtime keeps it at the top of the stack."""
        return self.mem_bytes - MSG_BYTES


class Labels:
    def __init__(self) -> None:
        self.count = 0

    def new(self, hint: str) -> str:
        self.count += 1
        return f".L{hint}{self.count}"


INVERSE = {"beqz": "bnez", "bnez": "beqz", "bgeu": "bltu", "bltu": "bgeu"}


class FrameGen:
    """Generates one function: homes, frame, prologue and epilogue. Run twice at most: the second time as a leaf
    if the first made no calls. `block` (the function's statements) comes from the statement part."""

    def __init__(self, program: Program, layout: Layout, names: Mapping[str, int], function: Function,
                 labels: Labels, frames: Mapping[str, int] | None, leaf: bool = False) -> None:
        self.program = program
        self.layout = layout
        self.names = names
        self.fn = function
        self.labels = labels
        self.stack_need = frames
        self.leaf = leaf
        self.lines: list[str] = []
        self.used: set[str] = set()
        self.calls_made = False
        self.max_spill = 0
        self.loops: list[tuple[str, str]] = []  # (continue label, break label)
        self.exit_label = labels.new("ret")
        self.message_buffers: dict[str, int] = {}  # message local -> frame offset of its buffer
        self.homes: dict[str, str] = {}  # int local -> register, or "stack:<offset>"
        self.hidden: dict[int, tuple[str | None, str | None]] = {}  # For node id -> (counter, stop) names
        self.frame_bytes = 0
        self.far = layout.mem_bytes > 4096  # branches reach +-4 KiB

    # -- layout ------------------------------------------------------------------------------------

    def allocate(self) -> None:
        ints = [name for name, kind in self.fn.locals.items() if kind == INT]
        if self.fn.label != "m_handle":  # handle's message is at a fixed address, needing no pointer
            ints += [p for p, k in zip(self.fn.params, self.fn.param_types) if k == MSG and p not in ints]
        for node in ast.walk(self.fn.node):
            if isinstance(node, ast.For):
                counter = f".c{id(node)}" if assigns(node.body, node.target.id) else None  # type: ignore[union-attr]
                stop = None
                stop_node = node.iter.args[0 if len(node.iter.args) == 1 else 1]  # type: ignore[attr-defined]
                if self.const(stop_node) != 0:
                    stop = f".s{id(node)}"
                self.hidden[id(node)] = (counter, stop)
                ints += [n for n in (counter, stop) if n]
            if isinstance(node, ast.Expr) and is_call_to(node.value, "receive", "call"):
                self.message_buffers[f".m{id(node)}"] = 0
        # Params first, so the ones arriving in a0/a1 stay there in a leaf.
        pool = list(LEAF_HOMES + SAVED) if self.leaf else list(SAVED)
        self.saved_used: list[str] = []
        stack_slots = 0
        ordered = self.fn.params + [n for n in ints if n not in self.fn.params]
        for name in ordered:
            if name not in ints:
                continue
            if pool:
                register = pool.pop(0)
                self.homes[name] = register
                if register in SAVED:
                    self.saved_used.append(register)
            else:
                self.homes[name] = f"stack:{stack_slots}"
                stack_slots += 1
        for name, kind in self.fn.locals.items():
            if kind == MSG and name not in self.fn.params:
                self.message_buffers[name] = 0
        self.stack_slots = stack_slots

    def frame(self) -> None:
        """Frame from sp up: spill slots, stack locals, message buffers, saved registers, ra."""
        offset = 4 * self.max_spill
        self.local_base = offset
        offset += 4 * self.stack_slots
        for name in self.message_buffers:
            self.message_buffers[name] = offset
            offset += MSG_BYTES
        self.saved_base = offset
        offset += 4 * len(self.saved_used) + (0 if self.leaf else 4)
        self.frame_bytes = offset
        if offset > 2047:
            raise CompileError(self.program.filename, self.fn.node,
                               f"{self.fn.name} needs a {offset}-byte stack frame; at most 2047 are supported")

    def run(self) -> None:
        self.allocate()
        # First pass finds the spill depth; the second emits with the final frame.
        self.frame()
        self.body()
        spill = self.max_spill
        self.lines, self.used, self.calls_made = [], set(), False
        self.max_spill = spill
        self.frame()
        self.body()

    def body(self) -> None:
        self.block(self.fn.body)

    def text(self) -> str:
        out = [f"{self.fn.label}:  # {self.fn.name}"]
        size = self.frame_bytes
        if size:
            out.append(f"    addi sp, sp, -{size}")
        for index, register in enumerate(self.saved_used):
            out.append(f"    sw {register}, {self.saved_base + 4 * index}(sp)")
        if not self.leaf:
            out.append(f"    sw ra, {size - 4}(sp)")
        if self.stack_need is not None and not self.leaf and self.fn.label in recursive_functions(self.program):
            below = self.stack_need[self.fn.label] - size
            # The rest of the chain below this frame, and the division helper's 8 bytes, must fit above the image.
            out += ["    la t6, __image_end", f"    li t5, {below + 8}", "    sub t5, sp, t5",
                    "    bgeu t5, t6, .Lstack_ok_" + self.fn.label,
                    "    j __fault_stack", ".Lstack_ok_" + self.fn.label + ":"]
            self.used.add("fault_stack")
        moves = [(self.homes[p], ARGS[i]) for i, p in enumerate(self.fn.params) if p in self.homes]
        for home, source in moves:
            if home.startswith("stack:"):
                out.append(f"    sw {source}, {self.stack_offset(home)}(sp)")
            elif home != source:
                out.append(f"    mv {home}, {source}")
        out += self.lines
        out.append(f"{self.exit_label}:")
        for index, register in enumerate(self.saved_used):
            out.append(f"    lw {register}, {self.saved_base + 4 * index}(sp)")
        if not self.leaf:
            out.append(f"    lw ra, {size - 4}(sp)")
        if size:
            out.append(f"    addi sp, sp, {size}")
        out.append("    ret")
        return "\n".join(out)

    def stack_offset(self, home: str) -> int:
        return self.local_base + 4 * int(home.split(":")[1])

    # -- emission helpers ----------------------------------------------------------------------------

    def emit(self, line: str) -> None:
        self.lines.append(f"    {line}")

    def label(self, name: str) -> None:
        self.lines.append(f"{name}:")

    def temp(self, depth: int, node: ast.AST) -> str:
        if depth >= len(TEMPS):
            raise CompileError(self.program.filename, node,
                               "expression too deep for the tile's registers: split it with local variables")
        return TEMPS[depth]

    def fault_branch(self, branch: str, operands: str, reason: FaultReason) -> None:
        """Branch to the fault stub for reason; past 4 KiB of memory a branch may not reach it, so jump."""
        if not self.far:
            self.emit(f"{branch} {operands}, {self.fault(reason)}")
            return
        ok = self.labels.new("ok")
        self.emit(f"{INVERSE[branch]} {operands}, {ok}")
        self.emit(f"j {self.fault(reason)}")
        self.label(ok)

    def fault(self, reason: FaultReason) -> str:
        stub = f"fault_{reason.name.lower()}"
        self.used.add(stub)
        return f"__{stub}"

    def load_const(self, register: str, value: int) -> None:
        self.emit(f"li {register}, {value}")

    def const(self, node: ast.expr) -> int | None:
        """The value of a constant expression, or None (also for one that would fault when run)."""
        try:
            return fold(node, self.program.constants)
        except ServiceFault:
            return None


    def home_register(self, name: str, depth: int, node: ast.AST) -> str:
        """The register a local lives in, or a temporary standing in for a stack-homed one."""
        home = self.homes[name]
        return self.temp(depth, node) if home.startswith("stack:") else home

    def spill_home(self, name: str, register: str) -> None:
        home = self.homes[name]
        if home.startswith("stack:"):
            self.emit(f"sw {register}, {self.stack_offset(home)}(sp)")

    def load_home(self, name: str, depth: int, node: ast.AST) -> str:
        home = self.homes[name]
        if home.startswith("stack:"):
            register = self.temp(depth, node)
            self.emit(f"lw {register}, {self.stack_offset(home)}(sp)")
            return register
        return home

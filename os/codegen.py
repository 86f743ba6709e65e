"""RV32I code generation for checked services (`tessera.os.service_lang.Program`).

`generate(program, layout, names)` returns assembly text for the project's assembler, to be assembled at
`layout.service_base`. The image starts with the service header the runtime reads (firmware/runtime.s:
init entry, handle entry, initial stack pointer, stack limit), then the fields, then the code.

Code shape: expressions evaluate on a stack of temporaries (t0-t3, a2-a7) with constants folded and
immediates used where RV32I has them; conditions compile to branches; locals live in registers (s0-s11 in
functions that call others, also a0/a1/t4-t6 in leaf functions) and on the stack past that. Fields have fixed
addresses, so they are reached with one load or store off x0 (or lui + offset in big memories). Multiplication
and division call the helpers of `tessera.os.codegen_support` only when an operand is not a suitable constant.
Faults (failed assert, index out of range, division by zero, a None message, stack overflow) branch to stubs
that put the FaultReason in a0 and jump to the runtime's `rt_fault`.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass

from tessera.os import service_int32 as i32
from tessera.os.codegen_support import (
    ARGS,
    CSR_CYCLE,
    CSR_MHARTID,
    DIVMOD,
    HEADER_BYTES,
    HOST_NODE,
    LEAF_HOMES,
    LOG_TAG,
    MSG_BYTES,
    MSG_LENGTH,
    MSG_SENDER,
    MSG_TAG,
    MSG_WORDS,
    MUL,
    SAVED,
    TEMPS,
    message_word,
)
from tessera.hw.noc_layouts import MessageOp
from tessera.os.service_api import FaultReason, ServiceFault
from tessera.os.service_lang import INT, MSG, CompileError, Field, Function, Program

#: Runtime entry points the generated code calls (firmware/runtime.s).
RUNTIME_ENTRIES = ("rt_fault", "rt_receive", "rt_receive_timeout", "rt_sleep")


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


class _Labels:
    def __init__(self) -> None:
        self.count = 0

    def new(self, hint: str) -> str:
        self.count += 1
        return f".L{hint}{self.count}"


def generate(program: Program, layout: Layout, names: Mapping[str, int]) -> str:
    """Assembly text for the whole service (header, fields, functions, the helpers and fault stubs it uses)."""
    missing = sorted(program.destinations - set(names))
    if missing:
        raise CompileError(program.filename, None, f"no tile address for service name(s): {', '.join(missing)}")
    labels = _Labels()
    used: set[str] = set()
    frames: dict[str, int] = {}
    bodies: list[str] = []
    for function in program.functions.values():
        gen = _FunctionGen(program, layout, names, function, labels, frames=None)
        gen.run()
        if not gen.calls_made:
            gen = _FunctionGen(program, layout, names, function, labels, frames=None, leaf=True)
            gen.run()
        frames[function.label] = gen.frame_bytes
        used |= gen.used
        bodies.append(gen.text())
    recursive = _recursive_functions(program)
    need = _stack_need(program, frames, recursive)
    # Recursive functions check the stack in their prologue: regenerate them with the bound known.
    if recursive:
        bodies = []
        for function in program.functions.values():
            gen = _FunctionGen(program, layout, names, function, labels, frames=need)
            gen.run()
            if not gen.calls_made:
                gen = _FunctionGen(program, layout, names, function, labels, frames=need, leaf=True)
                gen.run()
            bodies.append(gen.text())
            used |= gen.used
    stack_bytes = MSG_BYTES + max(need.get(function_label, 0) for function_label in ("m_init", "m_handle"))
    out = [f"# service {program.service} from {program.filename}"]
    for name in RUNTIME_ENTRIES:
        out.append(f".equ {name}, {layout.runtime_symbols[name]:#x}")
    out.append(f".equ __stack_bytes, {stack_bytes}")
    out += [".text", "service_header:",
            f"    .word {'m_init' if 'm_init' in program.functions else '__no_init'}, m_handle, "
            f"{layout.mem_bytes:#x}, __image_end", "service_data:"]
    out += _data_lines(program)
    if "m_init" not in program.functions:
        out += ["__no_init:", "    ret"]
    out += bodies
    if "mul" in used:
        out.append(MUL)
    if "divmod" in used:
        out.append(DIVMOD)
        used.add("fault_divide_by_zero")
    for reason in FaultReason:
        stub = f"fault_{reason.name.lower()}"
        if stub in used:
            out += [f"__{stub}:", f"    li a0, {int(reason)}", "    j rt_fault"]
    out.append("__image_end:")
    return "\n".join(out) + "\n"


def _data_lines(program: Program) -> list[str]:
    lines: list[str] = []
    for f in sorted(program.fields.values(), key=lambda f: f.offset):
        if f.kind == "bytes":
            lines.append(f"    .byte {', '.join(str(b) for b in f.initial)}  # {f.name}")
            lines.append("    .align 2")
        else:
            lines.append(f"    .word {', '.join(str(v & i32.MASK32) for v in f.initial)}  # {f.name}")
    return lines


def _recursive_functions(program: Program) -> set[str]:
    """Labels of functions that can reach themselves through calls."""
    recursive = set()
    for label in program.functions:
        seen: set[str] = set()
        stack = list(program.functions[label].callees)
        while stack:
            callee = stack.pop()
            if callee == label:
                recursive.add(label)
                break
            if callee not in seen:
                seen.add(callee)
                stack.extend(program.functions[callee].callees)
    return recursive


def _stack_need(program: Program, frames: Mapping[str, int], recursive: set[str]) -> dict[str, int]:
    """Bytes of stack a call to each function needs, counting recursive calls' frames once."""
    need: dict[str, int] = {}

    def visit(label: str, active: frozenset[str]) -> int:
        if label in need:
            return need[label]
        deeper = [visit(c, active | {label}) for c in program.functions[label].callees if c not in active | {label}]
        total = frames[label] + max(deeper, default=0)
        need[label] = total
        return total

    for label in program.functions:
        visit(label, frozenset())
    return need


def _fits12(value: int) -> bool:
    return -2048 <= value <= 2047


def _power_of_two(value: int) -> int | None:
    return value.bit_length() - 1 if value > 0 and value & (value - 1) == 0 else None


_BRANCH = {"Eq": "beq", "NotEq": "bne", "Lt": "blt", "GtE": "bge", "Gt": "bgt", "LtE": "ble"}
_NEGATE = {"Eq": "NotEq", "NotEq": "Eq", "Lt": "GtE", "GtE": "Lt", "Gt": "LtE", "LtE": "Gt"}
_UNSIGNED = {"u32lt": "bltu", "u32ge": "bgeu", "u32gt": "bgtu", "u32le": "bleu"}
_UNSIGNED_NEGATE = {"u32lt": "u32ge", "u32ge": "u32lt", "u32gt": "u32le", "u32le": "u32gt"}
_INVERSE = {"beqz": "bnez", "bnez": "beqz", "bgeu": "bltu", "bltu": "bgeu"}
_ALU = {"Add": "add", "Sub": "sub", "BitAnd": "and", "BitOr": "or", "BitXor": "xor", "LShift": "sll",
        "RShift": "sra"}
_ALU_IMM = {"Add": "addi", "BitAnd": "andi", "BitOr": "ori", "BitXor": "xori"}


class _FunctionGen:
    """Generates one function. Run twice at most: the second time as a leaf if the first made no calls."""

    def __init__(self, program: Program, layout: Layout, names: Mapping[str, int], function: Function,
                 labels: _Labels, frames: Mapping[str, int] | None, leaf: bool = False) -> None:
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
                counter = f".c{id(node)}" if _assigns(node.body, node.target.id) else None  # type: ignore[union-attr]
                stop = None
                stop_node = node.iter.args[0 if len(node.iter.args) == 1 else 1]  # type: ignore[attr-defined]
                if self.const(stop_node) != 0:
                    stop = f".s{id(node)}"
                self.hidden[id(node)] = (counter, stop)
                ints += [n for n in (counter, stop) if n]
            if isinstance(node, ast.Expr) and _is_call_to(node.value, "receive", "call"):
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
        if self.stack_need is not None and not self.leaf and self.fn.label in _recursive_functions(self.program):
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
        self.emit(f"{_INVERSE[branch]} {operands}, {ok}")
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
            return _fold(node, self.program.constants)
        except ServiceFault:
            return None

    # -- statements ----------------------------------------------------------------------------------

    def block(self, stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            self.statement(stmt)
            if isinstance(stmt, (ast.Return, ast.Break, ast.Continue)):
                return

    def statement(self, stmt: ast.stmt) -> None:
        if isinstance(stmt, ast.Assign):
            self.assign(stmt)
        elif isinstance(stmt, ast.AnnAssign):
            assert stmt.value is not None
            self.store_value(stmt.target, stmt.value, 0)
        elif isinstance(stmt, ast.AugAssign):
            self.aug_assign(stmt)
        elif isinstance(stmt, ast.If):
            self.if_statement(stmt)
        elif isinstance(stmt, ast.While):
            self.while_loop(stmt)
        elif isinstance(stmt, ast.For):
            self.for_loop(stmt)
        elif isinstance(stmt, ast.Break):
            self.emit(f"j {self.loops[-1][1]}")
        elif isinstance(stmt, ast.Continue):
            self.emit(f"j {self.loops[-1][0]}")
        elif isinstance(stmt, ast.Return):
            if stmt.value is not None:
                self.expr(stmt.value, 0, dest="a0")
            if stmt is not self.fn.body[-1]:
                self.emit(f"j {self.exit_label}")
        elif isinstance(stmt, ast.Expr):
            if isinstance(stmt.value, ast.Call):
                if _is_call_to(stmt.value, "receive", "call"):
                    self.message_call(stmt.value, f".m{id(stmt)}", 0)
                else:
                    self.call(stmt.value, 0, want_value=False)
        elif isinstance(stmt, ast.Assert):
            if self.far:
                ok = self.labels.new("ok")
                self.branch(stmt.test, ok, True, 0)
                self.emit(f"j {self.fault(FaultReason.ASSERT)}")
                self.label(ok)
            else:
                self.branch(stmt.test, self.fault(FaultReason.ASSERT), False, 0)
        elif isinstance(stmt, ast.Pass):
            pass
        else:  # the checker admits nothing else
            raise AssertionError(f"unexpected statement {type(stmt).__name__}")

    def assign(self, stmt: ast.Assign) -> None:
        target = stmt.targets[0]
        if isinstance(target, ast.Tuple):
            assert isinstance(stmt.value, ast.Tuple)
            count = len(target.elts)
            for index, value in enumerate(stmt.value.elts):
                self.expr(value, index, dest=self.temp(index, value))
            for index, element in enumerate(target.elts):
                self.store(element, self.temp(index, element), count)
            return
        if isinstance(target, ast.Name) and self.fn.locals.get(target.id) == MSG:
            self.message_call(stmt.value, target.id, 0)  # type: ignore[arg-type]
            return
        self.store_value(target, stmt.value, 0)

    def store_value(self, target: ast.expr, value: ast.expr, depth: int) -> None:
        """target = value, evaluating the value straight into a local's register where that is safe."""
        if isinstance(target, ast.Name) and not self.homes[target.id].startswith("stack:"):
            home = self.homes[target.id]
            if _writes_once(value):
                self.expr(value, depth, dest=home)
            else:
                register = self.expr(value, depth)
                self.emit(f"mv {home}, {register}")
            return
        register = self.expr(value, depth)
        self.store(target, register, depth + 1 if register == self.temp(depth, value) else depth)

    def store(self, target: ast.expr, register: str, depth: int) -> None:
        """Store a value held in `register` into a target; temporaries from `depth` up are free."""
        if isinstance(target, ast.Name):
            home = self.homes[target.id]
            if home.startswith("stack:"):
                self.emit(f"sw {register}, {self.stack_offset(home)}(sp)")
            elif home != register:
                self.emit(f"mv {home}, {register}")
        elif isinstance(target, ast.Attribute):
            self.field_access("sw", register, self.program.fields[target.attr], depth, target)
        else:
            assert isinstance(target, ast.Subscript) and isinstance(target.value, ast.Attribute)
            f = self.program.fields[target.value.attr]
            base, offset = self.element_address(f, target.slice, depth, target)
            self.emit(f"{'sb' if f.kind == 'bytes' else 'sw'} {register}, {offset}({base})")

    def aug_assign(self, stmt: ast.AugAssign) -> None:
        target = stmt.target
        if isinstance(target, ast.Subscript):
            assert isinstance(target.value, ast.Attribute)
            f = self.program.fields[target.value.attr]
            base, offset = self.element_address(f, target.slice, 0, target)
            depth = 1 if base == self.temp(0, target) else 0
            element = self.temp(depth, target)
            load = "lbu" if f.kind == "bytes" else "lw"
            self.emit(f"{load} {element}, {offset}({base})")
            result = self.binary(type(stmt.op).__name__, element, stmt.value, depth, element, stmt)
            self.emit(f"{'sb' if f.kind == 'bytes' else 'sw'} {result}, {offset}({base})")
            return
        load = ast.Name(target.id, ast.Load()) if isinstance(target, ast.Name) else ast.Attribute(
            target.value, target.attr, ast.Load())  # type: ignore[union-attr]
        value = ast.copy_location(ast.BinOp(ast.copy_location(load, target), stmt.op, stmt.value), stmt)
        self.store_value(target, value, 0)

    def if_statement(self, stmt: ast.If) -> None:
        if not stmt.orelse and len(stmt.body) == 1 and isinstance(stmt.body[0], (ast.Break, ast.Continue)):
            cont, done = self.loops[-1]
            self.branch(stmt.test, done if isinstance(stmt.body[0], ast.Break) else cont, True, 0)
            return
        end = self.labels.new("endif")
        other = self.labels.new("else") if stmt.orelse else end
        self.branch(stmt.test, other, False, 0)
        self.block(stmt.body)
        if stmt.orelse:
            if not _ends_flow(stmt.body):
                self.emit(f"j {end}")
            self.label(other)
            self.block(stmt.orelse)
        self.label(end)

    def while_loop(self, stmt: ast.While) -> None:
        top, test, end = self.labels.new("loop"), self.labels.new("test"), self.labels.new("done")
        forever = self.const(stmt.test)
        if forever is not None and forever:
            self.loops.append((top, end))
            self.label(top)
            self.block(stmt.body)
            self.emit(f"j {top}")
        else:
            self.loops.append((test, end))
            self.emit(f"j {test}")
            self.label(top)
            self.block(stmt.body)
            self.label(test)
            self.branch(stmt.test, top, True, 0)
        self.label(end)
        self.loops.pop()

    def for_loop(self, stmt: ast.For) -> None:
        args = stmt.iter.args  # type: ignore[attr-defined]
        start = args[0] if len(args) > 1 else ast.Constant(0)
        stop = args[1] if len(args) > 1 else args[0]
        step = self.const(args[2]) if len(args) == 3 else 1
        assert step is not None and step != 0
        counter_name, stop_name = self.hidden[id(stmt)]
        variable = stmt.target.id  # type: ignore[union-attr]
        top, cont, end = self.labels.new("for"), self.labels.new("next"), self.labels.new("done")
        # range() evaluates start, stop once, in that order, before the first iteration.
        counter = counter_name or variable
        start_value, stop_value = self.const(start), self.const(stop)
        runs = start_value is not None and stop_value is not None and (
            start_value < stop_value if step > 0 else start_value > stop_value)
        first = self.expr(start, 0, dest=self.home_register(counter, 0, stmt) if runs else self.temp(0, start))
        stop_register = "zero"
        if stop_name is not None:
            stop_register = self.home_register(stop_name, 1, stop)
            self.expr(stop, 1, dest=stop_register)
            self.spill_home(stop_name, stop_register)
        if not runs:  # an empty range leaves the variable alone
            self.emit(f"{'bge' if step > 0 else 'ble'} {first}, {stop_register}, {end}")
        counter_register = self.home_register(counter, 1, stmt)
        if counter_register != first:
            self.emit(f"mv {counter_register}, {first}")
        self.spill_home(counter, counter_register)
        self.loops.append((cont, end))
        self.label(top)
        if counter_name is not None:
            register = self.load_home(counter_name, 0, stmt)
            self.store(ast.Name(variable, ast.Store()), register, 1)
        self.block(stmt.body)
        self.label(cont)
        counter_register = self.load_home(counter, 0, stmt)
        stop_register = self.load_home(stop_name, 1, stmt) if stop_name else "zero"
        again = "blt" if step > 0 else "bgt"
        if abs(step) > 1:
            following = self.temp(2, stmt)
            self.add_immediate(following, counter_register, step)
            # Past the 32-bit range the loop is over, as in Python; the variable keeps its last value.
            self.emit(f"{'blt' if step > 0 else 'bgt'} {following}, {counter_register}, {end}")
            self.emit(f"mv {counter_register}, {following}")
        else:
            self.add_immediate(counter_register, counter_register, step)
        self.spill_home(counter, counter_register)
        self.emit(f"{again} {counter_register}, {stop_register}, {top}")
        if counter_name is None and _read_outside(self.fn.node, stmt, variable):
            # The variable ran one step past its last value: put it back, as Python leaves it.
            self.add_immediate(counter_register, counter_register, -step)
            self.spill_home(counter, counter_register)
        self.label(end)
        self.loops.pop()

    def add_immediate(self, dest: str, source: str, value: int) -> None:
        assert _fits12(value), "the checker keeps range steps within -2047..2047"
        self.emit(f"addi {dest}, {source}, {value}")

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

    # -- conditions ----------------------------------------------------------------------------------

    def branch(self, node: ast.expr, target: str, when: bool, depth: int) -> None:
        """Jump to target if the truth of node equals `when`; fall through otherwise."""
        value = self.const(node)
        if value is not None:
            if bool(value) == when:
                self.emit(f"j {target}")
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.branch(node.operand, target, not when, depth)
            return
        if isinstance(node, ast.BoolOp):
            is_and = isinstance(node.op, ast.And)
            if is_and != when:  # and-jump-if-false / or-jump-if-true: any operand decides
                for operand in node.values:
                    self.branch(operand, target, when, depth)
            else:
                skip = self.labels.new("skip")
                for operand in node.values[:-1]:
                    self.branch(operand, skip, not when, depth)
                self.branch(node.values[-1], target, when, depth)
                self.label(skip)
            return
        if isinstance(node, ast.Compare):
            if isinstance(node.ops[0], (ast.Is, ast.IsNot)):
                length = self.message_length(node.left, depth)  # type: ignore[arg-type]
                is_none = isinstance(node.ops[0], ast.Is)
                self.emit(f"{'beqz' if is_none == when else 'bnez'} {length}, {target}")
                return
            self.compare_branch(node, target, when, depth)
            return
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _UNSIGNED:
            left = self.expr(node.args[0], depth)
            right = self.expr(node.args[1], depth + 1)
            name = node.func.id if when else _UNSIGNED_NEGATE[node.func.id]
            self.emit(f"{_UNSIGNED[name]} {left}, {right}, {target}")
            return
        register = self.expr(node, depth)
        self.emit(f"{'bnez' if when else 'beqz'} {register}, {target}")

    def compare_branch(self, node: ast.Compare, target: str, when: bool, depth: int) -> None:
        operands = [node.left, *node.comparators]
        left = self.expr(operands[0], depth)
        skip = self.labels.new("skip") if when and len(node.ops) > 1 else None
        for index, op in enumerate(node.ops):
            # Each operand is evaluated once, left to right; the left one stays live while the right is computed.
            if left == self.temp(depth, node):
                depth += 1
            right = self.expr(operands[index + 1], depth)
            name = type(op).__name__
            last = index == len(node.ops) - 1
            if when and last:
                self.emit(f"{_BRANCH[name]} {left}, {right}, {target}")
            elif when:
                self.emit(f"{_BRANCH[_NEGATE[name]]} {left}, {right}, {skip}")
            else:
                self.emit(f"{_BRANCH[_NEGATE[name]]} {left}, {right}, {target}")
            left = right
        if skip:
            self.label(skip)

    # -- expressions ---------------------------------------------------------------------------------

    def expr(self, node: ast.expr, depth: int, dest: str | None = None) -> str:
        """Evaluate node; return the register holding it (dest if given, else a temp at depth or an alias).

        Without dest the result may be a local's own register or zero: read it, never write it.
        """
        value = self.const(node)
        if value is not None:
            if value == 0 and dest is None:
                return "zero"
            register = dest or self.temp(depth, node)
            self.load_const(register, value)
            return register
        register = self.value(node, depth, dest)
        if dest is not None and register != dest:
            self.emit(f"mv {dest}, {register}")
            return dest
        return register

    def value(self, node: ast.expr, depth: int, dest: str | None) -> str:
        out = dest or self.temp(depth, node)
        if isinstance(node, ast.Name):
            if node.id in ("True", "False"):
                raise AssertionError("folded")
            return self.load_home(node.id, depth, node)
        if isinstance(node, ast.BinOp):
            left = self.expr(node.left, depth)
            return self.binary(type(node.op).__name__, left, node.right, depth, out, node)
        if isinstance(node, ast.UnaryOp):
            operand = self.expr(node.operand, depth)
            op = type(node.op).__name__
            if op == "USub":
                self.emit(f"sub {out}, zero, {operand}")
            elif op == "Invert":
                self.emit(f"xori {out}, {operand}, -1")
            elif op == "Not":
                self.emit(f"seqz {out}, {operand}")
            else:
                return operand
            return out
        if isinstance(node, ast.BoolOp):
            out = self.temp(depth, node)
            end = self.labels.new("bool")
            for operand in node.values[:-1]:
                self.expr(operand, depth, dest=out)
                self.emit(f"{'beqz' if isinstance(node.op, ast.And) else 'bnez'} {out}, {end}")
            self.expr(node.values[-1], depth, dest=out)
            self.label(end)
            return out
        if isinstance(node, ast.Compare):
            return self.compare_value(node, depth, out)
        if isinstance(node, ast.IfExp):
            out = self.temp(depth, node)
            other, end = self.labels.new("else"), self.labels.new("endif")
            self.branch(node.test, other, False, depth)
            self.expr(node.body, depth, dest=out)
            self.emit(f"j {end}")
            self.label(other)
            self.expr(node.orelse, depth, dest=out)
            self.label(end)
            return out
        if isinstance(node, ast.Call):
            return self.call(node, depth, want_value=True, dest=out)
        if isinstance(node, ast.Attribute):
            if isinstance(node.value, ast.Name) and self.fn.locals.get(node.value.id) == MSG:
                base, offset = self.message_base(node.value, depth)
                if node.value.id in self.fn.maybe_none:
                    self.check_present(base, offset, out)
                self.emit(f"lw {out}, {offset + (MSG_SENDER if node.attr == 'sender' else MSG_TAG)}({base})")
                return out
            self.field_access("lw", out, self.program.fields[node.attr], depth, node)
            return out
        if isinstance(node, ast.Subscript):
            return self.subscript(node, depth, out)
        raise AssertionError(f"unexpected expression {type(node).__name__}")

    def binary(self, op: str, left: str, right_node: ast.expr, depth: int, out: str, node: ast.AST) -> str:
        """out = left op right; left is already in a register (a temp at depth, or an alias)."""
        right_depth = depth + 1 if left == self.temp(depth, node) else depth
        constant = self.const(right_node)
        if constant is not None:
            if op in _ALU_IMM and _fits12(constant):
                self.emit(f"{_ALU_IMM[op]} {out}, {left}, {constant}")
                return out
            if op == "Sub" and _fits12(-constant):
                self.emit(f"addi {out}, {left}, {-constant}")
                return out
            if op in ("LShift", "RShift"):
                self.emit(f"{'slli' if op == 'LShift' else 'srai'} {out}, {left}, {constant & 31}")
                return out
            shift = _power_of_two(constant)
            if op == "Mult" and shift is not None:
                self.emit(f"slli {out}, {left}, {shift}")
                return out
            if op == "FloorDiv" and shift is not None:
                self.emit(f"srai {out}, {left}, {shift}")
                return out
            if op == "Mod" and shift is not None and _fits12(constant - 1):
                self.emit(f"andi {out}, {left}, {constant - 1}")
                return out
        right = self.expr(right_node, right_depth)
        if op in _ALU:
            self.emit(f"{_ALU[op]} {out}, {left}, {right}")
            return out
        # Mult, FloorDiv, Mod: helper routines; the temporaries survive them.
        self.calls_made = True
        if left == "a1" and right == "a0":
            self.emit("mv t4, a0")
            self.emit("mv a0, a1")
            self.emit("mv a1, t4")
        elif right == "a0":
            self.emit("mv a1, a0")
            self.emit(f"mv a0, {left}")
        else:
            if left != "a0":
                self.emit(f"mv a0, {left}")
            if right != "a1":
                self.emit(f"mv a1, {right}")
        if op == "Mult":
            self.used.add("mul")
            self.emit("jal ra, __mul")
            result = "a0"
        else:
            self.used.add("divmod")
            self.emit("jal ra, __divmod")
            result = "a0" if op == "FloorDiv" else "a1"
        if out != result:
            self.emit(f"mv {out}, {result}")
        return out

    def compare_value(self, node: ast.Compare, depth: int, out: str) -> str:
        if isinstance(node.ops[0], (ast.Is, ast.IsNot)):
            length = self.message_length(node.left, depth)  # type: ignore[arg-type]
            self.emit(f"{'seqz' if isinstance(node.ops[0], ast.Is) else 'snez'} {out}, {length}")
            return out
        if len(node.ops) > 1:
            out = self.temp(depth, node)
            false, end = self.labels.new("false"), self.labels.new("endcmp")
            self.compare_branch(node, false, False, depth)
            self.emit(f"li {out}, 1")
            self.emit(f"j {end}")
            self.label(false)
            self.emit(f"li {out}, 0")
            self.label(end)
            return out
        op = type(node.ops[0]).__name__
        left = self.expr(node.left, depth)
        right_node = node.comparators[0]
        constant = self.const(right_node)
        if op in ("Lt", "GtE") and constant is not None and _fits12(constant):
            self.emit(f"slti {out}, {left}, {constant}")
            if op == "GtE":
                self.emit(f"xori {out}, {out}, 1")
            return out
        if op in ("Eq", "NotEq") and constant is not None and _fits12(-constant):
            if constant:
                self.emit(f"addi {out}, {left}, {-constant}")
                left = out
            self.emit(f"{'seqz' if op == 'Eq' else 'snez'} {out}, {left}")
            return out
        right = self.expr(right_node, depth + 1 if left == self.temp(depth, node) else depth)
        if op in ("Eq", "NotEq"):
            self.emit(f"xor {out}, {left}, {right}")
            self.emit(f"{'seqz' if op == 'Eq' else 'snez'} {out}, {out}")
        elif op in ("Lt", "GtE"):
            self.emit(f"slt {out}, {left}, {right}")
        else:
            self.emit(f"slt {out}, {right}, {left}")
        if op in ("GtE", "LtE"):
            self.emit(f"xori {out}, {out}, 1")
        return out

    # -- memory --------------------------------------------------------------------------------------

    def field_access(self, op: str, register: str, f: Field, depth: int, node: ast.AST) -> None:
        address = self.layout.data_base + f.offset
        if _fits12(address):
            self.emit(f"{op} {register}, {address}(zero)")
        else:
            scratch = self.temp(depth, node) if op == "sw" else register
            self.emit(f"lui {scratch}, %hi({address})")
            self.emit(f"{op} {register}, %lo({address})({scratch})")

    def element_address(self, f: Field, index_node: ast.expr, depth: int, node: ast.AST) -> tuple[str, int]:
        """(base register, offset) addressing element index of an array field, after a bounds check."""
        address = self.layout.data_base + f.offset
        scale = 1 if f.kind == "bytes" else 4
        constant = self.const(index_node)
        if constant is not None and 0 <= constant < f.size and _fits12(address + scale * constant):
            return "zero", address + scale * constant
        index = self.expr(index_node, depth)
        scratch = self.temp(depth + 1 if index == self.temp(depth, node) else depth, node)
        if not _below(index_node, f.size, self.program.constants):
            self.bounds_check(index, f.size, scratch, FaultReason.INDEX)
        scaled = self.temp(depth, node)
        if scale == 1 and _fits12(address):
            return index, address  # a local's register serves as the base as it is
        if scale == 4:
            self.emit(f"slli {scaled}, {index}, 2")
        elif index != scaled:
            self.emit(f"mv {scaled}, {index}")
        if _fits12(address):
            return scaled, address
        self.emit(f"lui {scratch}, %hi({address})")
        self.emit(f"add {scaled}, {scaled}, {scratch}")
        return scaled, f"%lo({address})"  # type: ignore[return-value]

    def bounds_check(self, index: str, size: int | str, scratch: str, reason: FaultReason) -> None:
        if isinstance(size, str):
            self.fault_branch("bgeu", f"{index}, {size}", reason)
        elif _fits12(size):
            self.emit(f"sltiu {scratch}, {index}, {size}")
            self.fault_branch("beqz", f"{scratch}", reason)
        else:
            self.load_const(scratch, size)
            self.fault_branch("bgeu", f"{index}, {scratch}", reason)

    def subscript(self, node: ast.Subscript, depth: int, out: str) -> str:
        if isinstance(node.value, ast.Attribute):
            f = self.program.fields[node.value.attr]
            base, offset = self.element_address(f, node.slice, depth, node)
            self.emit(f"{'lbu' if f.kind == 'bytes' else 'lw'} {out}, {offset}({base})")
            return out
        assert isinstance(node.value, ast.Name)
        base, offset = self.message_base(node.value, depth)
        held = base == self.temp(depth, node)
        length = self.temp(depth + 1 if held else depth, node)
        constant = self.const(node.slice)
        if node.value.id in self.fn.maybe_none or constant != 0:
            self.emit(f"lw {length}, {offset + MSG_LENGTH}({base})")
        if node.value.id in self.fn.maybe_none:
            self.fault_branch("beqz", f"{length}", FaultReason.NO_MESSAGE)
        if constant is not None and 0 <= constant < 2047:
            if constant > 0:  # a message has at least one word
                self.emit(f"sltiu {length}, {length}, {constant + 1}")
                self.fault_branch("bnez", f"{length}", FaultReason.INDEX)
            self.emit(f"lw {out}, {offset + MSG_WORDS + 4 * constant}({base})")
            return out
        index_depth = (depth + 2 if held else depth + 1)
        index = self.expr(node.slice, index_depth)
        self.bounds_check(index, length, length, FaultReason.INDEX)
        scaled = self.temp(index_depth, node)
        self.emit(f"slli {scaled}, {index}, 2")
        if base != "zero":
            self.emit(f"add {scaled}, {scaled}, {base}")
        self.emit(f"lw {out}, {offset + MSG_WORDS}({scaled})")
        return out

    def message_base(self, node: ast.Name, depth: int) -> tuple[str, int]:
        """(register, offset) at which a message variable's record starts."""
        name = node.id
        if name in self.message_buffers:
            return "sp", self.message_buffers[name]
        if self.fn.label == "m_handle" and name == self.fn.params[0]:
            address = self.layout.dispatch_message
            if _fits12(address + MSG_BYTES - 4):
                return "zero", address
            register = self.temp(depth, node)
            self.load_const(register, address)
            return register, 0
        return self.load_home(name, depth, node), 0

    def message_length(self, node: ast.Name, depth: int) -> str:
        base, offset = self.message_base(node, depth)
        register = self.temp(depth, node)
        self.emit(f"lw {register}, {offset + MSG_LENGTH}({base})")
        return register

    def check_present(self, base: str, offset: int, scratch: str) -> None:
        self.emit(f"lw {scratch}, {offset + MSG_LENGTH}({base})")
        self.fault_branch("beqz", f"{scratch}", FaultReason.NO_MESSAGE)

    def message_pointer(self, node: ast.Name, register: str, depth: int) -> None:
        base, offset = self.message_base(node, depth)
        if base == "zero":
            self.load_const(register, offset)
        else:
            self.emit(f"addi {register}, {base}, {offset}")

    # -- calls ---------------------------------------------------------------------------------------

    def spill(self, depth: int) -> None:
        self.max_spill = max(self.max_spill, depth)
        for index in range(depth):
            self.emit(f"sw {TEMPS[index]}, {4 * index}(sp)")

    def reload(self, depth: int) -> None:
        for index in range(depth):
            self.emit(f"lw {TEMPS[index]}, {4 * index}(sp)")

    def call(self, node: ast.Call, depth: int, want_value: bool, dest: str | None = None) -> str:
        out = dest or self.temp(depth, node)
        func = node.func
        if isinstance(func, ast.Attribute):
            return self.user_call(self.program.methods[func.attr], node, depth, out)
        name = func.id  # type: ignore[union-attr]
        if name in self.program.module_functions:
            return self.user_call(self.program.module_functions[name], node, depth, out)
        if name == "len":
            arg = node.args[0]
            if isinstance(arg, ast.Attribute):
                self.load_const(out, self.program.fields[arg.attr].size)
                return out
            base, offset = self.message_base(arg, depth)  # type: ignore[arg-type]
            self.emit(f"lw {out}, {offset + MSG_LENGTH}({base})")
            if arg.id in self.fn.maybe_none:  # type: ignore[attr-defined]
                self.fault_branch("beqz", out, FaultReason.NO_MESSAGE)
            return out
        if name == "abs":
            value = self.expr(node.args[0], depth)
            sign = self.temp(depth + 1, node)
            self.emit(f"srai {sign}, {value}, 31")
            self.emit(f"xor {out}, {value}, {sign}")
            self.emit(f"sub {out}, {out}, {sign}")
            return out
        if name in ("min", "max"):
            first = self.expr(node.args[0], depth, dest=self.temp(depth, node))
            second = self.expr(node.args[1], depth + 1)
            keep = self.labels.new("keep")
            # min(a, b) is b only if b < a; max(a, b) is b only if a < b (Python keeps the first on ties).
            self.emit(f"{'bge' if name == 'min' else 'ble'} {second}, {first}, {keep}")
            self.emit(f"mv {first}, {second}")
            self.label(keep)
            return first
        if name in _UNSIGNED:
            left = self.expr(node.args[0], depth)
            right = self.expr(node.args[1], depth + 1 if left == self.temp(depth, node) else depth)
            if name in ("u32lt", "u32ge"):
                self.emit(f"sltu {out}, {left}, {right}")
            else:
                self.emit(f"sltu {out}, {right}, {left}")
            if name in ("u32ge", "u32le"):
                self.emit(f"xori {out}, {out}, 1")
            return out
        if name == "u32shr":
            left = self.expr(node.args[0], depth)
            constant = self.const(node.args[1])
            if constant is not None:
                self.emit(f"srli {out}, {left}, {constant & 31}")
                return out
            right = self.expr(node.args[1], depth + 1 if left == self.temp(depth, node) else depth)
            self.emit(f"srl {out}, {left}, {right}")
            return out
        if name == "now":
            self.emit(f"csrrs {out}, {CSR_CYCLE:#x}, zero")
            return out
        if name == "me":
            self.emit(f"csrrs {out}, {CSR_MHARTID:#x}, zero")
            return out
        if name == "sleep":
            self.expr(node.args[0], depth, dest=self.temp(depth, node))
            self.runtime_call("rt_sleep", [self.temp(depth, node)], depth)
            return out
        if name in ("send", "send_to", "reply", "log"):
            self.send(node, name, depth)
            return out
        raise AssertionError(f"unexpected call {name}")

    def user_call(self, label: str, node: ast.Call, depth: int, out: str) -> str:
        callee = self.program.functions[label]
        registers = []
        for index, (arg, kind) in enumerate(zip(node.args, callee.param_types)):
            if kind == MSG:
                register = self.temp(depth + index, arg)
                self.message_pointer(arg, register, depth + index)  # type: ignore[arg-type]
                registers.append(register)
            else:
                registers.append(self.expr(arg, depth + index))
        self.spill(depth)
        _parallel_move(self, list(zip(ARGS, registers)))
        self.calls_made = True
        self.emit(f"jal ra, {label}")
        if callee.returns_value and out != "a0":
            self.emit(f"mv {out}, a0")
        self.reload(depth)
        return out

    def runtime_call(self, entry: str, arguments: list[str], depth: int) -> None:
        self.spill(depth)
        _parallel_move(self, list(zip(ARGS, arguments)))
        self.calls_made = True
        self.emit(f"jal ra, {entry}")
        self.reload(depth)

    def send(self, node: ast.Call, name: str, depth: int) -> None:
        """Arguments in Python's order (destination, words, tag), then put each word and send."""
        args = list(node.args)
        if name in ("send", "call"):
            destination: str | None = None
            args = args[1:]
        elif name == "send_to":
            destination = self.expr(args[0], depth, dest=self.temp(depth, node))
            depth += 1
            args = args[1:]
        else:
            destination = None
        words = []
        for index, arg in enumerate(args):
            words.append(self.expr(arg, depth + index))
        depth += len(args)
        tag_node = next((k.value for k in node.keywords if k.arg == "tag"), None)
        tag = self.expr(tag_node, depth) if tag_node is not None else "zero"
        if tag != "zero":
            depth += 1
        for word in words:
            self.emit(message_word(MessageOp.PUT, rs1=word))
        if name == "reply":
            destination = self.temp(depth, node)
            tag = self.temp(depth + 1, node)
            address = self.layout.dispatch_message
            if _fits12(address + MSG_TAG):
                self.emit(f"lw {destination}, {address + MSG_SENDER}(zero)")
                self.emit(f"lw {tag}, {address + MSG_TAG}(zero)")
            else:
                self.load_const(tag, address)
                self.emit(f"lw {destination}, {MSG_SENDER}({tag})")
                self.emit(f"lw {tag}, {MSG_TAG}({tag})")
        elif name == "log":
            destination = self.temp(depth, node)
            self.load_const(destination, HOST_NODE)
            tag = self.temp(depth + 1, node)
            self.load_const(tag, LOG_TAG)
        elif name in ("send", "call"):
            destination = self.temp(depth, node)
            self.load_const(destination, self.names[node.args[0].value])  # type: ignore[attr-defined]
        assert destination is not None
        self.emit(message_word(MessageOp.SEND, rs1=destination, rs2=tag))

    def message_call(self, node: ast.Call, target: str, depth: int) -> None:
        """receive(...) or call(...) into the buffer of message variable `target`."""
        name = node.func.id  # type: ignore[attr-defined]
        if name == "call":
            self.send(node, "call", depth)
        timeout = next((k.value for k in node.keywords if k.arg == "timeout"), None)
        buffer = self.temp(depth, node)
        self.emit(f"addi {buffer}, sp, {self.message_buffers[target]}")
        if timeout is None:
            self.runtime_call("rt_receive", [buffer], depth)
        else:
            limit = self.expr(timeout, depth + 1)
            self.runtime_call("rt_receive_timeout", [buffer, limit], depth)


def _parallel_move(gen: _FunctionGen, moves: list[tuple[str, str]]) -> None:
    """Emit dest <- source for every pair as if all at once (no source is read after being overwritten)."""
    pending = [(d, s) for d, s in moves if d != s]
    while pending:
        for index, (dest, source) in enumerate(pending):
            if all(dest != other for _, other in pending[:index] + pending[index + 1:]):
                gen.emit(f"mv {dest}, {source}")
                pending.pop(index)
                break
        else:
            dest, source = pending[0]
            gen.emit(f"mv t4, {source}")
            pending[0] = (dest, "t4")


def _fold(node: ast.expr, constants: Mapping[str, int]) -> int | None:
    """Value of an expression made only of literals, constants and operators (None if it has anything else)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int)):
        return i32.wrap(node.value)
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            return int(node.id == "True")
        return constants.get(node.id)
    if isinstance(node, ast.UnaryOp):
        operand = _fold(node.operand, constants)
        return None if operand is None else i32.UNARY[type(node.op).__name__](operand)
    if isinstance(node, ast.BinOp):
        left, right = _fold(node.left, constants), _fold(node.right, constants)
        if left is None or right is None:
            return None
        return i32.BINARY[type(node.op).__name__](left, right)
    return None


def _below(node: ast.expr, size: int, constants: Mapping[str, int]) -> bool:
    """Whether node is `x & mask` with 0 <= mask < size, so it indexes an array of size without a check."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
        for side in (node.left, node.right):
            mask = _fold(side, constants)
            if mask is not None and 0 <= mask < size:
                return True
    return False


def _read_outside(function: ast.FunctionDef, loop: ast.For, name: str) -> bool:
    """Whether name is read anywhere in the function other than inside the loop's own body."""
    inside = {id(n) for stmt in loop.body for n in ast.walk(stmt)}
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) and id(n) not in inside
               for n in ast.walk(function))


def _writes_once(node: ast.expr) -> bool:
    """Whether evaluating node into a register writes it only with the final value (so it may be a live local)."""
    return not isinstance(node, (ast.BoolOp, ast.IfExp, ast.Compare)) and not (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"))


def _ends_flow(stmts: list[ast.stmt]) -> bool:
    return bool(stmts) and isinstance(stmts[-1], (ast.Return, ast.Break, ast.Continue))


def _is_call_to(node: ast.expr, *names: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def _assigns(stmts: list[ast.stmt], name: str) -> bool:
    for stmt in stmts:
        for node in ast.walk(stmt):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
                targets = [node.target]
            for target in targets:
                names = target.elts if isinstance(target, ast.Tuple) else [target]
                if any(isinstance(n, ast.Name) and n.id == name for n in names):
                    return True
    return False

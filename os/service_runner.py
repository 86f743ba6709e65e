"""Runs a service in CPython with the tile's semantics: the reference the compiled code is tested against.

The source is first checked by the front end (so the runner refuses exactly what the compiler refuses), then
its syntax tree is rewritten so that every arithmetic operator goes through `tessera.os.service_int32`
(32-bit wrapping, floor division faulting on zero, shift counts mod 32) and executed. Fields become instance
attributes (`WordArray` / `ByteArray` for arrays). The messaging calls of `tessera.os.service_api` reach this
runner through `Host`.

Time is abstract here: `receive(timeout=...)` returns None exactly when no message is queued, `sleep` returns
at once and `now` counts calls. A blocking receive with nothing queued waits for the next `deliver`.
"""

from __future__ import annotations

import ast
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tessera.os import service_api, service_int32
from tessera.firmware.isa import Cause
from tessera.hw.noc_layouts import TIMEOUT_BITS
from tessera.os.codegen_support import (
    HEADER_BYTES,
    HOST_NODE,
    LOG_TAG,
    SNAPSHOT_COMMIT,
    SNAPSHOT_TAG,
    SNAPSHOT_WORDS_PER_MESSAGE,
)
from tessera.os.service_build import runtime
from tessera.os.service_api import ByteArray, FaultReason, Message, ServiceFault, WordArray
from tessera.os.service_lang import Field, Program, check

MASK32 = 0xFFFF_FFFF
#: Receive timeouts the message unit accepts: 0 .. 2**TIMEOUT_BITS - 1 cycles.
TIMEOUT_LIMIT = 1 << TIMEOUT_BITS


@dataclass(frozen=True)
class Outgoing:
    """A message a service sent: destination node, tag, and payload words as unsigned 32-bit numbers."""

    dest: int
    tag: int
    words: tuple[int, ...]


def _unsigned(words: Iterable[int]) -> tuple[int, ...]:
    return tuple(int(w) & MASK32 for w in words)


class _Int32Rewriter(ast.NodeTransformer):
    """Routes operators through the 32-bit semantics; augmented assignments evaluate their target once."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if type(node.value) is int:
            return ast.copy_location(ast.Constant(service_int32.wrap(node.value)), node)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        return ast.copy_location(_helper(f"bin_{type(node.op).__name__}", node.left, node.right), node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.op, ast.Not):
            return node
        return ast.copy_location(_helper(f"un_{type(node.op).__name__}", node.operand), node)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "abs":
            return ast.copy_location(_helper("abs", *node.args), node)
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST | list[ast.stmt]:
        self.generic_visit(node)
        op = f"bin_{type(node.op).__name__}"
        target = node.target
        prelude: list[ast.stmt] = []
        if isinstance(target, ast.Subscript):
            # Python evaluates the index once, loads, evaluates the value, stores: so does the tile.
            prelude.append(ast.Assign([ast.Name("_tessera_aug_index", ast.Store())], target.slice))
            target = ast.Subscript(target.value, ast.Name("_tessera_aug_index", ast.Load()), ast.Store())
        load = _as_load(target)
        assign = ast.Assign([target], _helper(op, load, node.value))
        return [ast.fix_missing_locations(ast.copy_location(s, node)) for s in (*prelude, assign)]


def _as_load(target: ast.expr) -> ast.expr:
    if isinstance(target, ast.Name):
        return ast.Name(target.id, ast.Load())
    if isinstance(target, ast.Attribute):
        return ast.Attribute(target.value, target.attr, ast.Load())
    assert isinstance(target, ast.Subscript)
    return ast.Subscript(target.value, target.slice, ast.Load())


def _helper(name: str, *args: ast.expr) -> ast.Call:
    return ast.Call(ast.Name(f"_tessera_i32_{name}", ast.Load()), list(args), [])


def _helpers() -> dict[str, object]:
    names: dict[str, object] = {f"_tessera_i32_bin_{op}": fn for op, fn in service_int32.BINARY.items()}
    names.update({f"_tessera_i32_un_{op}": fn for op, fn in service_int32.UNARY.items()})
    names["_tessera_i32_abs"] = lambda a: service_int32.wrap(abs(a))
    return names


@dataclass
class ServiceRunner:
    """One service executing in CPython, fed messages by `deliver`; what it sends collects in `sent`."""

    source: str
    filename: str = "<service>"
    names: Mapping[str, int] = field(default_factory=dict)
    node: int = 0
    permitted: frozenset[int] | None = None  # nodes it may send to; None = all
    sent: list[Outgoing] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.program: Program = check(self.source, self.filename)
        missing = sorted(self.program.destinations - set(self.names))
        if missing:
            raise ValueError(f"{self.filename}: no address for service name(s) {', '.join(missing)}")
        tree = _Int32Rewriter().visit(ast.parse(self.source, self.filename))
        namespace: dict[str, object] = {"__name__": f"tessera_service_{self.program.service}", **_helpers()}
        exec(compile(ast.fix_missing_locations(tree), self.filename, "exec"), namespace)
        self.instance = namespace[self.program.service]()  # type: ignore[operator]
        for f in self.program.fields.values():
            if f.kind == "int":
                value: object = f.initial[0]
            elif f.kind == "array":
                value = WordArray(f.size, f.initial)
            else:
                value = ByteArray(f.size, bytes(f.initial))
            setattr(self.instance, f.name, value)
        self.mailbox: deque[Message] = deque()
        self.current: Message | None = None
        self.clock = 0
        self.fault: ServiceFault | None = None
        self._changed = threading.Condition()
        self._idle = False  # the service waits for a message that is not there (or has stopped)
        self._thread: threading.Thread | None = None
        self._crash: Exception | None = None
        self._stopped = False  # the service faulted: it takes no more messages
        self._handed_over = False  # start with upgrade (if any) instead of init

    # -- driving the service ---------------------------------------------------------------------------
    # The service runs on a thread of its own, like the tile's dispatch loop: init, then receive and handle
    # for ever. The driver's calls return once the service waits on an empty mailbox or has faulted, so a
    # receive() inside a handler resumes when a later deliver() brings its message, as on the tile.

    def start(self, *, handed_over: bool = False) -> None:
        """Run `init` (or, when `handed_over`, `upgrade` if the service has one: the state of its previous build
        was handed over, as `tessera reload` does on the tile), then handle whatever is queued; return when the
        service waits for more."""
        self._handed_over = handed_over
        self._thread = threading.Thread(target=self._dispatch, name=f"service {self.program.service}", daemon=True)
        self._thread.start()
        self._settle()

    def deliver(self, sender: int, tag: int, *words: int) -> None:
        """Queue a message; once started, let the service handle everything queued."""
        with self._changed:
            self.mailbox.append(Message(sender, tag & MASK32, _unsigned(words)))
            self._idle = self._stopped
            self._changed.notify_all()
        if self._thread is not None:
            self._settle()

    def _settle(self) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._idle)
        if self._crash is not None:
            raise RuntimeError(f"the runner failed running {self.filename}") from self._crash

    def _take(self) -> Message:
        """The next message, waiting (idle) while there is none."""
        with self._changed:
            while not self.mailbox:
                self._idle = True
                self._changed.notify_all()
                self._changed.wait()
            return self.mailbox.popleft()

    def _dispatch(self) -> None:
        service_api.bind_host(self)
        try:
            if self._handed_over and "upgrade" in self.program.methods:
                self.instance.upgrade()
            else:
                self.instance.init()
            while True:
                self.current = self._take()
                self.instance.handle(self.current)
        except ServiceFault as fault:
            self.fault = fault
        except AssertionError as error:
            self.fault = ServiceFault(FaultReason.ASSERT, str(error) or "assert failed")
        except (AttributeError, TypeError) as error:
            # The checker admits these only for a message that is None (a receive or call that timed out).
            self.fault = ServiceFault(FaultReason.NO_MESSAGE, str(error))
        except RecursionError as error:
            self.fault = ServiceFault(FaultReason.STACK, str(error))
        except Exception as error:  # a runner bug: hand it to the driver rather than hang it
            self._crash = error
        with self._changed:
            self._idle = self._stopped = True
            self._changed.notify_all()

    # -- service_api.Host ----------------------------------------------------------------------------

    def _send(self, node: int, words: tuple[int, ...], tag: int) -> None:
        if self.permitted is not None and node not in self.permitted:
            raise ServiceFault(None, f"send to node {node} is not permitted", Cause.SEND_DENIED)
        if not 0 <= tag <= 0xFFFF:
            raise ServiceFault(None, f"tag {tag} outside 0..65535", Cause.MESSAGE_FAULT)
        self.sent.append(Outgoing(node, tag, _unsigned(words)))

    def send(self, name: str, words: tuple[int, ...], tag: int) -> None:
        self._send(self.names[name], words, tag)

    def send_to(self, node: int, words: tuple[int, ...], tag: int) -> None:
        self._send(node & MASK32, words, tag)

    def reply(self, words: tuple[int, ...]) -> None:
        assert self.current is not None, "reply outside a handler"
        self._send(self.current.sender, words, self.current.tag)

    def receive(self, timeout: int | None) -> Message | None:
        if timeout is not None and not 0 <= timeout < TIMEOUT_LIMIT:
            raise ServiceFault(None, f"receive timeout {timeout} outside 0..{TIMEOUT_LIMIT - 1}", Cause.MESSAGE_FAULT)
        if timeout is None:
            return self._take()
        with self._changed:
            return self.mailbox.popleft() if self.mailbox else None

    def call(self, name: str, words: tuple[int, ...], tag: int, timeout: int | None) -> Message | None:
        self.send(name, words, tag)
        return self.receive(timeout)

    def log(self, words: tuple[int, ...]) -> None:
        self._send(HOST_NODE, words, LOG_TAG)

    def now(self) -> int:
        self.clock += 1
        return self.clock

    def sleep(self, cycles: int) -> None:
        return None

    def me(self) -> int:
        return self.node

    def snapshot(self) -> None:
        """The messages the tile's `__snapshot` sends: the fields' memory words, then the commit."""
        words = self.state_words()
        address = runtime().symbols["runtime_end"] + HEADER_BYTES  # where the compiler puts the first field
        for start in range(0, len(words), SNAPSHOT_WORDS_PER_MESSAGE):
            chunk = words[start:start + SNAPSHOT_WORDS_PER_MESSAGE]
            self._send(HOST_NODE, (address + 4 * start, *chunk), SNAPSHOT_TAG)
        self._send(HOST_NODE, (SNAPSHOT_COMMIT, len(words)), SNAPSHOT_TAG)

    # -- observing ------------------------------------------------------------------------------------

    def state_words(self) -> list[int]:
        """The fields as the tile holds them in memory: little-endian words from the first field's offset."""
        memory = bytearray(self.program.data_bytes)
        for name, data in self.field_bytes().items():
            offset = self.program.fields[name].offset
            memory[offset:offset + len(data)] = data
        return [int.from_bytes(memory[i:i + 4], "little") for i in range(0, len(memory), 4)]

    def field_bytes(self) -> dict[str, bytes]:
        """Every field's bytes as they lie in tile memory (little-endian; a byte string padded to whole words)."""
        out: dict[str, bytes] = {}
        for f, values in zip(self.program.fields.values(), self.field_values().values()):
            width = 1 if f.kind == "bytes" else 4
            out[f.name] = b"".join(value.to_bytes(width, "little") for value in values).ljust(f.byte_size, b"\0")
        return out

    def take_state(self, old: ServiceRunner) -> None:
        """Hand `old`'s state over to this (not yet started) runner as `tessera reload` does on the tile
        (tessera.os.reload.carry_over): every field whose name both have gets the first min(old, new) bytes of
        the old field as it lies in memory; the other fields keep their initial values."""
        ours = self.field_bytes()
        for name, data in old.field_bytes().items():
            if name in ours:
                self._write_field(self.program.fields[name], data[:len(ours[name])] + ours[name][len(data):])

    def _write_field(self, f: Field, memory: bytes) -> None:
        """Set field `f` from its bytes as they lie in memory."""
        if f.kind == "bytes":
            values = list(memory[:f.size])
        else:
            values = [service_int32.wrap(int.from_bytes(memory[i:i + 4], "little")) for i in range(0, 4 * f.size, 4)]
        if f.kind == "int":
            setattr(self.instance, f.name, values[0])
        else:
            for index, value in enumerate(values):
                getattr(self.instance, f.name)[index] = value

    def field_values(self) -> dict[str, list[int]]:
        """Every field as unsigned 32-bit words (arrays element by element), for comparison with a tile."""
        values: dict[str, list[int]] = {}
        for f in self.program.fields.values():
            value = getattr(self.instance, f.name)
            items = [value] if f.kind == "int" else [value[i] for i in range(f.size)]
            values[f.name] = [int(v) & (0xFF if f.kind == "bytes" else MASK32) for v in items]
        return values

"""Code generation for one function, the call part: helper functions, builtins and the service API (the runtime
entry points, inline message instructions for send/reply/log, CSR reads for now/me)."""

from __future__ import annotations

import ast

from tessera.hw.noc_layouts import MessageOp
from tessera.os.codegen_analysis import fits12
from tessera.os.codegen_expressions import UNSIGNED
from tessera.os.codegen_frame import FrameGen
from tessera.os.codegen_support import (
    ARGS,
    CSR_CYCLE,
    CSR_MHARTID,
    HOST_NODE,
    LOG_TAG,
    MSG_LENGTH,
    MSG_SENDER,
    MSG_TAG,
    TEMPS,
    message_word,
)
from tessera.os.service_api import FaultReason
from tessera.os.service_lang import MSG


class CallGen(FrameGen):
    """Calls: arguments into a0..a7 with the live temporaries spilled around the call."""

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
        if name in UNSIGNED:
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
        if name == "snapshot":  # the helper keeps the expression temporaries, as __mul does
            self.calls_made = True
            self.used.add("snapshot")
            self.load_const("a0", self.layout.data_base)
            self.load_const("a1", self.program.data_bytes // 4)
            self.emit("jal ra, __snapshot")
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
        parallel_move(self, list(zip(ARGS, registers)))
        self.calls_made = True
        self.emit(f"jal ra, {label}")
        if callee.returns_value and out != "a0":
            self.emit(f"mv {out}, a0")
        self.reload(depth)
        return out

    def runtime_call(self, entry: str, arguments: list[str], depth: int) -> None:
        self.spill(depth)
        parallel_move(self, list(zip(ARGS, arguments)))
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
            if fits12(address + MSG_TAG):
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


def parallel_move(gen: CallGen, moves: list[tuple[str, str]]) -> None:
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

"""Code generation for one function, the expression part: values into registers, conditions into branches,
fields, array elements and message words in memory."""

from __future__ import annotations

import ast

from tessera.os.codegen_analysis import below_mask, fits12, power_of_two
from tessera.os.codegen_frame import FrameGen
from tessera.os.codegen_support import MSG_BYTES, MSG_LENGTH, MSG_SENDER, MSG_TAG, MSG_WORDS
from tessera.os.service_api import FaultReason
from tessera.os.service_lang import MSG, Field

BRANCH = {"Eq": "beq", "NotEq": "bne", "Lt": "blt", "GtE": "bge", "Gt": "bgt", "LtE": "ble"}
NEGATE = {"Eq": "NotEq", "NotEq": "Eq", "Lt": "GtE", "GtE": "Lt", "Gt": "LtE", "LtE": "Gt"}
UNSIGNED = {"u32lt": "bltu", "u32ge": "bgeu", "u32gt": "bgtu", "u32le": "bleu"}
UNSIGNED_NEGATE = {"u32lt": "u32ge", "u32ge": "u32lt", "u32gt": "u32le", "u32le": "u32gt"}
ALU = {"Add": "add", "Sub": "sub", "BitAnd": "and", "BitOr": "or", "BitXor": "xor", "LShift": "sll",
        "RShift": "sra"}
ALU_IMM = {"Add": "addi", "BitAnd": "andi", "BitOr": "ori", "BitXor": "xori"}


class ExpressionGen(FrameGen):
    """Expressions and conditions; calls inside them come from the call part of `FunctionGen`."""

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
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in UNSIGNED:
            left = self.expr(node.args[0], depth)
            right = self.expr(node.args[1], depth + 1)
            name = node.func.id if when else UNSIGNED_NEGATE[node.func.id]
            self.emit(f"{UNSIGNED[name]} {left}, {right}, {target}")
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
                self.emit(f"{BRANCH[name]} {left}, {right}, {target}")
            elif when:
                self.emit(f"{BRANCH[NEGATE[name]]} {left}, {right}, {skip}")
            else:
                self.emit(f"{BRANCH[NEGATE[name]]} {left}, {right}, {target}")
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
            if op in ALU_IMM and fits12(constant):
                self.emit(f"{ALU_IMM[op]} {out}, {left}, {constant}")
                return out
            if op == "Sub" and fits12(-constant):
                self.emit(f"addi {out}, {left}, {-constant}")
                return out
            if op in ("LShift", "RShift"):
                self.emit(f"{'slli' if op == 'LShift' else 'srai'} {out}, {left}, {constant & 31}")
                return out
            shift = power_of_two(constant)
            if op == "Mult" and shift is not None:
                self.emit(f"slli {out}, {left}, {shift}")
                return out
            if op == "FloorDiv" and shift is not None:
                self.emit(f"srai {out}, {left}, {shift}")
                return out
            if op == "Mod" and shift is not None and fits12(constant - 1):
                self.emit(f"andi {out}, {left}, {constant - 1}")
                return out
        right = self.expr(right_node, right_depth)
        if op in ALU:
            self.emit(f"{ALU[op]} {out}, {left}, {right}")
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
        if op in ("Lt", "GtE") and constant is not None and fits12(constant):
            self.emit(f"slti {out}, {left}, {constant}")
            if op == "GtE":
                self.emit(f"xori {out}, {out}, 1")
            return out
        if op in ("Eq", "NotEq") and constant is not None and fits12(-constant):
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
        if fits12(address):
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
        if constant is not None and 0 <= constant < f.size and fits12(address + scale * constant):
            return "zero", address + scale * constant
        index = self.expr(index_node, depth)
        scratch = self.temp(depth + 1 if index == self.temp(depth, node) else depth, node)
        if not below_mask(index_node, f.size, self.program.constants):
            self.bounds_check(index, f.size, scratch, FaultReason.INDEX)
        scaled = self.temp(depth, node)
        if scale == 1 and fits12(address):
            return index, address  # a local's register serves as the base as it is
        if scale == 4:
            self.emit(f"slli {scaled}, {index}, 2")
        elif index != scaled:
            self.emit(f"mv {scaled}, {index}")
        if fits12(address):
            return scaled, address
        self.emit(f"lui {scratch}, %hi({address})")
        self.emit(f"add {scaled}, {scaled}, {scratch}")
        return scaled, f"%lo({address})"  # type: ignore[return-value]

    def bounds_check(self, index: str, size: int | str, scratch: str, reason: FaultReason) -> None:
        if isinstance(size, str):
            self.fault_branch("bgeu", f"{index}, {size}", reason)
        elif fits12(size):
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
            if fits12(address + MSG_BYTES - 4):
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

"""Code generation for one function, the statement part: assignments, if/while/for, break/continue, return, assert."""

from __future__ import annotations

import ast

from tessera.os.codegen_analysis import ends_flow, fits12, is_call_to, read_outside, writes_once
from tessera.os.codegen_frame import FrameGen
from tessera.os.service_api import FaultReason
from tessera.os.service_lang import MSG


class StatementGen(FrameGen):
    """Statements; expressions, conditions and calls come from the sibling parts of `FunctionGen`."""

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
                if is_call_to(stmt.value, "receive", "call"):
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
            if writes_once(value):
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
            if not ends_flow(stmt.body):
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
        if counter_name is None and read_outside(self.fn.node, stmt, variable):
            # The variable ran one step past its last value: put it back, as Python leaves it.
            self.add_immediate(counter_register, counter_register, -step)
            self.spill_home(counter, counter_register)
        self.label(end)
        self.loops.pop()

    def add_immediate(self, dest: str, source: str, value: int) -> None:
        assert fits12(value), "the checker keeps range steps within -2047..2047"
        self.emit(f"addi {dest}, {source}, {value}")

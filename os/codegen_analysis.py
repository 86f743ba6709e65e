"""Facts about a checked service's syntax trees and numbers that code generation decides on.

Pure functions, no code emitted: constant folding, which functions recurse and how much stack each call chain
needs, whether an index needs a bounds check, and small shape tests on statements and expressions.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping

from tessera.os import service_int32 as i32
from tessera.os.service_lang import Program


def recursive_functions(program: Program) -> set[str]:
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


def stack_need(program: Program, frames: Mapping[str, int], recursive: set[str]) -> dict[str, int]:
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


def fits12(value: int) -> bool:
    return -2048 <= value <= 2047


def power_of_two(value: int) -> int | None:
    return value.bit_length() - 1 if value > 0 and value & (value - 1) == 0 else None


def fold(node: ast.expr, constants: Mapping[str, int]) -> int | None:
    """Value of an expression made only of literals, constants and operators (None if it has anything else)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int)):
        return i32.wrap(node.value)
    if isinstance(node, ast.Name):
        if node.id in ("True", "False"):
            return int(node.id == "True")
        return constants.get(node.id)
    if isinstance(node, ast.UnaryOp):
        operand = fold(node.operand, constants)
        return None if operand is None else i32.UNARY[type(node.op).__name__](operand)
    if isinstance(node, ast.BinOp):
        left, right = fold(node.left, constants), fold(node.right, constants)
        if left is None or right is None:
            return None
        return i32.BINARY[type(node.op).__name__](left, right)
    return None


def below_mask(node: ast.expr, size: int, constants: Mapping[str, int]) -> bool:
    """Whether node is `x & mask` with 0 <= mask < size, so it indexes an array of size without a check."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
        for side in (node.left, node.right):
            mask = fold(side, constants)
            if mask is not None and 0 <= mask < size:
                return True
    return False


def read_outside(function: ast.FunctionDef, loop: ast.For, name: str) -> bool:
    """Whether name is read anywhere in the function other than inside the loop's own body."""
    inside = {id(n) for stmt in loop.body for n in ast.walk(stmt)}
    return any(isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load) and id(n) not in inside
               for n in ast.walk(function))


def writes_once(node: ast.expr) -> bool:
    """Whether evaluating node into a register writes it only with the final value (so it may be a live local)."""
    return not isinstance(node, (ast.BoolOp, ast.IfExp, ast.Compare)) and not (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"))


def ends_flow(stmts: list[ast.stmt]) -> bool:
    return bool(stmts) and isinstance(stmts[-1], (ast.Return, ast.Break, ast.Continue))


def is_call_to(node: ast.expr, *names: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names


def assigns(stmts: list[ast.stmt], name: str) -> bool:
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

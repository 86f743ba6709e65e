"""Differential tests on generated services: the golden tile model and the CPython runner must agree.

Each seed gives a service with constants, fields (ints, an array, a byte string), helper functions (one
recursive), and a handler mixing every expression and statement form of the language, including operations that
fault (division by zero, indices out of range, failed asserts). Both sides get the same messages; replies,
fields and faults must be equal.
"""

from __future__ import annotations

import random

import pytest

from tessera.os.service_runner import ServiceRunner
from tessera.os.service_tile import TileService

BINARY = ["+", "-", "*", "//", "%", "<<", ">>", "&", "|", "^"]
COMPARE = ["<", "<=", ">", ">=", "==", "!="]
INTERESTING = [0, 1, 2, 3, 7, -1, -2, -7, 100, 255, 2047, 2048, -2048, 4096, 65535, 0x7FFFFFFF, -0x80000000,
               0x12345678, 0xFFFFFFFF, 31, 32]


class ProgramGenerator:
    """Writes one random service in the language subset."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.helpers: list[tuple[str, int]] = []  # (name, arity) of helpers defined so far

    def constant(self) -> str:
        rng = self.rng
        value = rng.choice(INTERESTING) if rng.random() < 0.6 else rng.randint(-5000, 5000)
        return str(value) if value >= 0 else f"({value})"

    def expr(self, names: list[str], depth: int, in_method: bool) -> str:
        rng = self.rng
        if depth <= 0 or rng.random() < 0.25:
            choice = rng.random()
            if choice < 0.45 and names:
                return rng.choice(names)
            if choice < 0.6:
                return rng.choice(["K1", "K2", "True", "False"]) if rng.random() < 0.3 else self.constant()
            if in_method and choice < 0.8:
                return rng.choice(["self.total", "self.last", f"self.table[{self.index(names)}]",
                                   f"self.text[{self.index(names)}]", "len(self.table)"])
            if in_method and choice < 0.9:
                return rng.choice(["msg[0]", "msg[1]", "len(msg)", "msg.sender", "msg.tag"])
            return self.constant()
        kind = rng.random()
        sub = lambda: self.expr(names, depth - 1, in_method)  # noqa: E731
        if kind < 0.45:
            return f"({sub()} {rng.choice(BINARY)} {sub()})"
        if kind < 0.55:
            return f"({rng.choice(['-', '~', 'not ', '+'])}{sub()})"
        if kind < 0.68:
            ops = [rng.choice(COMPARE) for _ in range(rng.choice([1, 1, 1, 2]))]
            text = sub()
            for op in ops:
                text += f" {op} {sub()}"
            return f"({text})"
        if kind < 0.76:
            return f"({sub()} {rng.choice(['and', 'or'])} {sub()})"
        if kind < 0.82:
            return f"({sub()} if {sub()} else {sub()})"
        if kind < 0.9:
            name = rng.choice(["abs", "min", "max", "u32lt", "u32ge", "u32shr", "u32gt", "u32le"])
            arity = 1 if name == "abs" else 2
            return f"{name}({', '.join(sub() for _ in range(arity))})"
        if self.helpers:
            name, arity = rng.choice(self.helpers)
            return f"{name}({', '.join(sub() for _ in range(arity))})"
        return sub()

    def index(self, names: list[str]) -> str:
        """An index that is in range most of the time."""
        if self.rng.random() < 0.9:
            return f"({self.expr(names, 1, False)}) & 7"
        return f"{self.rng.choice(names)} - {self.constant()}"  # a variable: a constant index out of range is refused

    def block(self, names: list[str], depth: int, indent: str, in_method: bool, in_loop: bool) -> list[str]:
        rng = self.rng
        lines: list[str] = []
        for _ in range(rng.randint(1, 4)):
            kind = rng.random()
            e = lambda: self.expr(names, rng.randint(1, 3), in_method)  # noqa: E731
            if kind < 0.3:
                lines.append(f"{indent}{rng.choice(names)} = {e()}")
            elif kind < 0.4:
                lines.append(f"{indent}{rng.choice(names)} {rng.choice(BINARY)}= {e()}")
            elif kind < 0.5 and in_method:
                target = rng.choice(["self.total", "self.last", f"self.table[{self.index(names)}]",
                                     f"self.text[{self.index(names)}]"])
                op = rng.choice(["=", "+=", "^=", "-="])
                lines.append(f"{indent}{target} {op} {e()}")
            elif kind < 0.62 and depth > 0:
                lines.append(f"{indent}if {e()}:")
                lines += self.block(names, depth - 1, indent + "    ", in_method, in_loop)
                if rng.random() < 0.5:
                    lines.append(f"{indent}elif {e()}:")
                    lines += self.block(names, depth - 1, indent + "    ", in_method, in_loop)
                if rng.random() < 0.5:
                    lines.append(f"{indent}else:")
                    lines += self.block(names, depth - 1, indent + "    ", in_method, in_loop)
            elif kind < 0.72 and depth > 0:
                var = rng.choice(names)
                args = rng.choice([
                    f"{rng.randint(0, 6)}",
                    f"{rng.randint(-3, 3)}, {rng.randint(-3, 6)}",
                    f"{rng.randint(-5, 5)}, {rng.randint(-5, 9)}, {rng.choice([1, 2, 3, -1, -2, -3])}",
                    f"({e()}) & 3",
                ])
                lines.append(f"{indent}for {var} in range({args}):")
                lines += self.block(names, depth - 1, indent + "    ", in_method, True)
            elif kind < 0.8 and depth > 0:
                counter = f"w{depth}"
                lines.append(f"{indent}{counter} = 0")
                lines.append(f"{indent}while {counter} < {rng.randint(0, 5)} and ({e()} or True):")
                lines.append(f"{indent}    {counter} += 1")
                lines += self.block(names + [], depth - 1, indent + "    ", in_method, True)
            elif kind < 0.86 and in_loop:
                lines.append(f"{indent}if {e()}:")
                lines.append(f"{indent}    {rng.choice(['break', 'continue'])}")
            elif kind < 0.88:
                lines.append(f"{indent}assert {e()} or {rng.random() < 0.9}")
            elif kind < 0.92 and len(names) >= 2:
                a, b = rng.sample(names, 2)
                lines.append(f"{indent}{a}, {b} = {b}, {e()}")
            else:
                lines.append(f"{indent}{rng.choice(names)} = {e()}")
        return lines

    def helper(self, index: int) -> list[str]:
        rng = self.rng
        arity = rng.randint(1, 3)
        params = [f"p{i}" for i in range(arity)]
        names = params + ["x", "y"]
        name = f"helper{index}"
        lines = [f"def {name}({', '.join(params)}) -> int:", "    x = p0", "    y = 1"]
        for depth in range(1, 3):
            lines.append(f"    w{depth} = 0")
        lines += self.block(names, 2, "    ", False, False)
        lines.append(f"    return {self.expr(names, 2, False)}")
        self.helpers.append((name, arity))
        return lines

    def service(self) -> str:
        rng = self.rng
        lines = ["from tessera.os.service_api import Service, Array, Bytes, Message, reply, u32lt, u32ge, u32shr, "
                 "u32gt, u32le", f"K1 = {self.constant()}", f"K2 = K1 * 3 + {rng.randint(0, 9)}", "",
                 "def ladder(n: int, acc: int) -> int:", "    n = n & 7", "    if n <= 0:", "        return acc",
                 "    return ladder(n - 1, acc * 5 + n) ^ n", ""]
        self.helpers.append(("ladder", 2))
        for index in range(rng.randint(1, 3)):
            lines += self.helper(index) + [""]
        lines += ["class Fuzz(Service):", f"    total: int = {self.constant()}", "    last: int",
                  f"    table: Array[int, 8] = [{', '.join(self.constant() for _ in range(rng.randint(0, 8)))}]",
                  f"    text: Bytes[8] = b'{rng.choice(['', 'ab', 'tessera!'])}'", "",
                  "    def handle(self, msg: Message) -> None:", "        a = msg[0]", "        b = msg[1]",
                  "        c = ladder(msg[0] & 7, msg[1])", "        w1 = 0", "        w2 = 0"]
        names = ["a", "b", "c"]
        lines += self.block(names, 2, "        ", True, False)
        lines.append("        self.last = a ^ b")
        lines.append(f"        reply(a, b, c, {self.expr(names, 2, True)})")
        return "\n".join(lines) + "\n"


def run_both(source: str, messages: list[tuple[int, int, int, int]]) -> tuple[TileService, ServiceRunner]:
    tile = TileService(source, "fuzz.py", mem_bytes=16384, max_steps=3_000_000)
    runner = ServiceRunner(source, "fuzz.py")
    for message in messages:
        tile.deliver(*message)
        runner.deliver(*message)
    tile.start()
    runner.start()
    return tile, runner


def assert_same(tile: TileService, runner: ServiceRunner, source: str) -> None:
    context = f"\n--- service ---\n{source}"
    assert tile.sent == runner.sent, context
    if runner.fault is None:
        assert tile.fault is None, f"tile faulted ({tile.fault}) but CPython did not{context}"
    else:
        assert tile.fault is not None, f"CPython faulted ({runner.fault}) but the tile did not{context}"
        assert (tile.fault.cause, tile.fault.reason) == (runner.fault.cause, runner.fault.reason), context
    assert tile.field_values() == runner.field_values(), context


@pytest.mark.parametrize("seed", range(60))
def test_random_services_agree(seed: int) -> None:
    source = ProgramGenerator(seed).service()
    rng = random.Random(seed ^ 0x5EED)
    messages = [(rng.randint(0, 126), rng.randint(0, 0xFFFF), rng.choice(INTERESTING) & 0xFFFFFFFF,
                 rng.randint(-100, 100) & 0xFFFFFFFF) for _ in range(4)]
    tile, runner = run_both(source, messages)
    assert_same(tile, runner, source)

"""Everything outside the service subset is refused with file:line:column, the construct and the remedy."""

from __future__ import annotations

import pytest

from tessera.os.service_build import build_service
from tessera.os.service_lang import CompileError, check
from tessera.os.service_runner import ServiceRunner

HEADER = "from tessera.os.service_api import Service, Message, Array, Bytes, reply, send, receive, call\n"


def service(body: str, fields: str = "", module: str = "") -> str:
    """A service whose handle() body is `body` (indented by 8), starting on line 5 (+1 per module/field line)."""
    return (HEADER + module + "class S(Service):\n" + fields + "    x: int = 0\n"
            + "    def handle(self, msg: Message) -> None:\n" + body)


# (source, the line the error is on, a phrase the message must contain)
HANDLER_CASES = {
    "float": ("        y = 1.5\n", "floating point"),
    "string": ("        y = 'abc'\n", "strings are not supported"),
    "list": ("        y = [1, 2]\n", "a list is not supported"),
    "dict": ("        y = {1: 2}\n", "a dict is not supported"),
    "true division": ("        y = self.x / 2\n", "use `//`"),
    "power": ("        y = self.x ** 2\n", "`**` is not supported"),
    "try": ("        try:\n            pass\n        except Exception:\n            pass\n", "try/except"),
    "raise": ("        raise ValueError()\n", "use `assert"),
    "with": ("        with self.x:\n            pass\n", "with is not supported"),
    "lambda": ("        f = lambda: 1\n", "lambda"),
    "comprehension": ("        y = [i for i in range(3)]\n", "list comprehension"),
    "generator": ("        yield 1\n", "generator"),
    "global": ("        global G\n", "global"),
    "nonlocal closure": ("        def inner():\n            return 1\n", "nested function"),
    "import inside": ("        import math\n", "import"),
    "del": ("        del self.x\n", "del is not supported"),
    "print": ("        print(1)\n", "use log("),
    "unknown name": ("        y = z\n", "unknown name 'z'"),
    "use before assignment": ("        if self.x:\n            y = 1\n        reply(y)\n", "before it is assigned"),
    "field without self": ("        x = x + 1\n", "before it is assigned"),
    "starred": ("        reply(*self.x)\n", "*-unpacking"),
    "slice": ("        y = msg[0:2]\n", "a slice"),
    "walrus": ("        if (y := 1):\n            pass\n", "the := operator"),
    "for over non-range": ("        for i in msg:\n            pass\n", "range(...) only"),
    "loop else": ("        while self.x:\n            pass\n        else:\n            pass\n", "`else` clause"),
    "message arithmetic": ("        y = msg + 1\n", "a message is not a number"),
    "message store": ("        msg[0] = 1\n", "messages are read-only"),
    "is on ints": ("        y = self.x is 1\n", "`is` / `is not`"),
    "in": ("        y = 1 in msg\n", "`in` and `is`"),
    "too many words": ("        reply(1, 2, 3, 4, 5)\n", "1 to 4 words"),
    "send to a variable": ("        send(self.x, 1)\n", "string literal"),
    "unknown keyword": ("        send('kv', 1, colour=2)\n", "no keyword argument 'colour'"),
    "chained assignment": ("        a = b = 1\n", "chained assignment"),
    "break outside loop": ("        break\n", "outside a loop"),
    "match": ("        match self.x:\n            case 1:\n                pass\n", "match"),
    "expression statement": ("        self.x\n", "does nothing"),
    "returning from handle": ("        return 1\n", "handle returns nothing"),
    "tuple value": ("        y = (1, 2)\n", "tuples exist only"),
    "range step variable": ("        for i in range(0, 4, self.x):\n            pass\n", "constant"),
}


@pytest.mark.parametrize("case", sorted(HANDLER_CASES))
def test_handler_construct_is_refused(case: str) -> None:
    body, phrase = HANDLER_CASES[case]
    source = service(body)
    with pytest.raises(CompileError) as error:
        check(source, "svc.py")
    assert error.value.filename == "svc.py"
    assert error.value.line >= 4, str(error.value)  # the body, or handle's def
    assert phrase in error.value.message, str(error.value)
    assert str(error.value).startswith(f"svc.py:{error.value.line}:{error.value.column}: ")
    # The runner refuses exactly what the compiler refuses.
    with pytest.raises(CompileError):
        ServiceRunner(source, "svc.py")


MODULE_CASES = {
    "import": ("import os\n" + service("        pass\n"), 1, "import only the service API"),
    "from other module": ("from os import path\n" + service("        pass\n"), 1, "only the service API"),
    "mutable global": (service("        pass\n", module="G = [1]\n"), 2, "not a constant integer"),
    "second class": (service("        pass\n", module="class Other:\n    pass\n"), 2, "only one class"),
    "module statement": (service("        pass\n", module="print(1)\n"), 2, "module level"),
    "varargs": (service("        pass\n", module="def f(*args):\n    return 1\n"), 2, "*args"),
    "keyword-only": (service("        pass\n", module="def f(*, a):\n    return 1\n"), 2, "keyword-only"),
    "defaults": (service("        pass\n", module="def f(a=1):\n    return a\n"), 2, "default parameter"),
    "decorator": (service("        pass\n", module="@staticmethod\ndef f(a):\n    return a\n"), 2, "decorators"),
    "field without type": (HEADER + "class S(Service):\n    x = 0\n    def handle(self, msg):\n        pass\n", 3,
                           "declare a field with its type"),
    "float field": (service("        pass\n", fields="    f: float = 0.0\n"), 3, "field types are"),
    "no handle": (HEADER + "class S(Service):\n    x: int = 0\n", 2, "has no `def handle"),
    "no service": (HEADER + "A = 1\n", 1, "no service class"),
    "missing return": (service("        pass\n", module="def f(a):\n    if a:\n        return 1\n"), 2,
                       "may end without returning"),
    "constant reassigned": (service("        K = 2\n", module="K = 1\n"), 6, "is a constant"),
    "too big literal": (service("        y = 1 << 40 + 0x1FFFFFFFF\n"), 5, "does not fit 32 bits"),
    "constant index out of range": (service("        self.a[9] = 1\n", fields="    a: Array[int, 4]\n"), 6,
                                    "outside a"),
    "syntax error": (HEADER + "class S(Service)\n", 2, "syntax error"),
    "upgrade with parameters": (service("        pass\n", fields="    def upgrade(self, old):\n        pass\n"), 3,
                                "upgrade must be `def upgrade(self):`"),
    "calling upgrade": (service("        self.upgrade()\n", fields="    def upgrade(self):\n        pass\n"), 7,
                        "upgrade is called by the runtime"),
}


@pytest.mark.parametrize("case", sorted(MODULE_CASES))
def test_module_construct_is_refused(case: str) -> None:
    source, line, phrase = MODULE_CASES[case]
    with pytest.raises(CompileError) as error:
        check(source, "svc.py")
    assert error.value.line == line, str(error.value)
    assert phrase in error.value.message, str(error.value)


def test_unknown_destination_is_refused_at_build() -> None:
    with pytest.raises(CompileError, match="no tile address for service name.*'?kv"):
        build_service(service("        send('kv', 1)\n"), "svc.py", names={})


def test_a_service_too_big_for_its_tile_is_refused_with_sizes() -> None:
    source = service("        pass\n", fields="    big: Array[int, 300]\n")
    with pytest.raises(CompileError, match=r"does not fit a 1024-byte tile: \d+ bytes .* plus \d+ bytes of stack"):
        build_service(source, "svc.py")
    assert build_service(source, "svc.py", mem_bytes=2048).code_bytes > 1200


def test_expression_too_deep_is_refused() -> None:
    deep = "1"
    for _ in range(14):
        deep = f"(self.x + {deep} * self.x)"
    with pytest.raises(CompileError, match="expression too deep"):
        build_service(service(f"        reply({deep})\n"), "svc.py", mem_bytes=8192)


# A send to the host with a tag the host reserves: (call, the column of the tag, a phrase of the remedy).
HOST_TAG_CASES = {
    "reload fence": ("        send('host', 1, tag=0xFFFC)\n", 29, "use a tag below 0xFFFC"),
    "fence by constant": ("        send('host', 1, tag=FENCE)\n", 29, "use a tag below 0xFFFC"),
    "fence by send_to": ("        send_to(127, 1, tag=0xFFFC)\n", 29, "use a tag below 0xFFFC"),
    "fence by call": ("        m = call('host', 1, tag=0xFFFC)\n", 33, "use a tag below 0xFFFC"),
    "log tag": ("        send('host', 1, tag=0xFFFF)\n", 29, "write log(...)"),
    "snapshot tag": ("        send('host', 1, tag=0xFFFD)\n", 29, "call snapshot()"),
    "down tag": ("        send_to(127, 1, tag=0xFFFE)\n", 29, "DOWN report"),
}


@pytest.mark.parametrize("case", sorted(HOST_TAG_CASES))
def test_a_reserved_tag_to_the_host_is_refused(case: str) -> None:
    body, column, phrase = HOST_TAG_CASES[case]
    source = service(body, module="FENCE = 0xFFFC\n").replace("call\n", "call, send_to\n", 1)
    with pytest.raises(CompileError) as error:
        check(source, "svc.py")
    assert (error.value.line, error.value.column) == (6, column), str(error.value)
    assert "is reserved for the host" in error.value.message and phrase in error.value.message, str(error.value)
    with pytest.raises(CompileError):
        ServiceRunner(source, "svc.py")


def test_reserved_tags_to_tiles_and_ordinary_tags_to_the_host_are_compiled() -> None:
    source = service("        send('kv', 1, tag=0xFFFC)\n        send('host', 1, tag=0xFFFB)\n"
                     "        send_to(msg.sender, 1, tag=0xFFFC)\n").replace("call\n", "call, send_to\n", 1)
    assert build_service(source, "svc.py", names={"kv": 2, "host": 127}).code_bytes > 0

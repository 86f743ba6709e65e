"""Every example in the documents that carry executable examples runs here, in document order, in one fresh
folder per document:

- ```python file=NAME``` / ```toml file=NAME```: the block is written to NAME; ```toml append=NAME``` appends it;
- ```python run```: the block is executed there; a following ```output``` block must match what it printed;
- ```console```: each `$ tessera ...` line runs the command (chip commands against the fake chip on a local TCP
  port instead of the virtual board: `--target` is added); the lines after it must match its output.

Matching: a line `...` stands for any number of lines, `...` inside a line for any text.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from tessera.os.cli import main as tessera_main

import host_os_fakechip as fake

DOCS = Path(__file__).resolve().parent.parent / "docs"
EXECUTED_DOCS = ("tutorial.md",)
CHIP_COMMANDS = {"run", "send", "call", "ps", "identify", "listen", "stop", "restart"}




@dataclass(frozen=True)
class Block:
    language: str
    options: dict[str, str]
    flags: frozenset[str]
    text: str
    line: int  # where the block's first line of code is in the document


FENCE = re.compile(r"^```(\S*)(.*)$")


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a Markdown file (fences at the start of a line, not nested)."""
    out: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        start = index + 1
        end = start
        while not lines[end].startswith("```"):
            end += 1
        words = match[2].split()
        options = dict(word.split("=", 1) for word in words if "=" in word)
        flags = frozenset(word for word in words if "=" not in word)
        out.append(Block(match[1], options, flags, "\n".join(lines[start:end]) + "\n", start + 1))
        index = end + 1
    return out


def matches(expected: list[str], actual: list[str]) -> bool:
    """`expected` against `actual`: a line `...` is any number of lines, `...` in a line any text."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == "...":
        return any(matches(rest, actual[skip:]) for skip in range(len(actual) + 1))
    if not actual:
        return False
    pattern = ".*".join(re.escape(part) for part in head.rstrip().split("..."))
    return re.fullmatch(pattern, actual[0].rstrip()) is not None and matches(rest, actual[1:])


def run_console(block: Block, target: str, where: str) -> None:
    commands: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            commands.append((line[2:], []))
        else:
            assert commands, f"{where}: output before the first command"
            commands[-1][1].append(line)
    for command, expected in commands:
        argv = shlex.split(command)
        assert argv[0] == "tessera", f"{where}: only tessera commands are executed, not {argv[0]!r}"
        if argv[1] in CHIP_COMMANDS:
            argv += ["--target", target]
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(io.StringIO()):
            status = tessera_main(argv[1:])
        actual = output.getvalue().splitlines()
        assert status == 0, f"{where}: `{command}` exited {status}:\n{output.getvalue()}"
        assert matches(expected, actual), (f"{where}: `{command}` printed\n" + "\n".join(actual)
                                           + "\n--- but the document shows\n" + "\n".join(expected))


def run_document(name: str, folder: Path, target: str) -> int:
    """Run the examples of docs/NAME in `folder`; returns how many blocks were executed."""
    executed = 0
    pending_output: tuple[str, str] | None = None  # (what a `python run` printed, where)
    for block in blocks(DOCS / name):
        where = f"docs/{name}:{block.line}"
        if block.language == "output":
            assert pending_output is not None, f"{where}: an output block that follows no `python run` block"
            printed, source = pending_output
            assert matches(block.text.splitlines(), printed.splitlines()), \
                f"{source} printed\n{printed}--- but {where} shows\n{block.text}"
            pending_output = None
            executed += 1
            continue
        assert pending_output is None, f"{where}: the `python run` block before it printed output nobody shows"
        if "file" in block.options:
            (folder / block.options["file"]).write_text(block.text)
        elif "append" in block.options:
            with (folder / block.options["append"]).open("a") as file:
                file.write("\n" + block.text)
        elif block.language == "python" and "run" in block.flags:
            output = io.StringIO()
            with contextlib.redirect_stdout(output):
                exec(compile(block.text, where, "exec"), {"__name__": "__doc_example__"})
            if output.getvalue():
                pending_output = (output.getvalue(), where)
        elif block.language == "console":
            run_console(block, target, where)
        else:
            raise AssertionError(f"{where}: a ```{block.language}``` block that is neither a file, a run nor a "
                                 f"console example: tag it (see tests/test_docs_examples.py)")
        executed += 1
    assert pending_output is None, f"{pending_output[1]} printed output the document does not show"
    return executed


def test_matching_rules() -> None:
    assert matches(["a", "...", "d"], ["a", "b", "c", "d"])
    assert matches(["a ... c"], ["a b c"])
    assert not matches(["a", "d"], ["a", "b", "d"])
    assert not matches(["a ... c"], ["a b d"])


@pytest.mark.parametrize("name", EXECUTED_DOCS)
def test_document_examples(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TESSERA_SESSION_DIR", str(tmp_path / "sessions"))
    server = fake.FakeBoardServer(fake.FakeChip(tiles=8, mem_bytes=4096, mailbox_depth=8))
    try:
        assert run_document(name, tmp_path, server.target) == len(blocks(DOCS / name))
    finally:
        server.close()

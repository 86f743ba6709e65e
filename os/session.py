"""The running system's control point: while `tessera run` holds the link, the other commands (`send`, `call`,
`ps`, `top`, `trace`, `stop`, `restart`, `reload`) talk to it instead of the chip, since a link has one host at a time.

`tessera run` registers a session for its target: a file `<session dir>/<target>.json` holding the localhost port
of a small server (one JSON object per line each way). A command first looks for the session of its `--target`;
with none, it opens the link itself (`tessera.os.commands`). Requests:

    {"op": "ps"}                                   -> {"ok": true, "rows": [...]}
    {"op": "send", "name": N, "tag": T, "words": [...]}
    {"op": "call", "name": N, "tag": T, "words": [...], "timeout": S} -> {"ok": true, "words": [...]}
    {"op": "stop" | "restart", "name": N}
    {"op": "reload", "name": N, "image": PATH, "timeout": S}  -> {"ok": true, "summary": "state handed over ..."}
    {"op": "trace", "seconds": S, "interval": I}    -> after S seconds {"ok": true, "trace": Trace.to_json()}
Errors come back as {"ok": false, "error": "one line"}.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessera.os.chip import Incoming
from tessera.os.commands import io_service_node
from tessera.os.errors import TesseraError
from tessera.os.image import read_image
from tessera.os.runner import Runner
from tessera.os.trace import TraceRecorder

SESSION_DIR_ENV = "TESSERA_SESSION_DIR"
REQUEST_TIMEOUT_S = 30.0


class SessionError(TesseraError):
    pass


def session_dir() -> Path:
    configured = os.environ.get(SESSION_DIR_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "tessera" / "sessions"


def session_file(target: str) -> Path:
    return session_dir() / (re.sub(r"[^A-Za-z0-9_.-]", "_", target) + ".json")


@dataclass
class _Call:
    connection: socket.socket
    tile: int
    deadline: float


@dataclass
class _Tracing:
    connection: socket.socket
    recorder: TraceRecorder
    deadline: float
    interval: float
    next_sample: float


class SessionServer:
    """Serves requests for `runner` between its polls (`runner.serve(idle=server.idle)`)."""

    def __init__(self, runner: Runner, target: str) -> None:
        self.runner = runner
        self.path = session_file(target)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.setblocking(False)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"port": self._listener.getsockname()[1], "pid": os.getpid(),
                                         "image": str(runner.image_path)}))
        self._calls: list[_Call] = []
        self._traces: list[_Tracing] = []
        runner.on_message = self._reply_to_call

    def close(self) -> None:
        self._listener.close()
        self.path.unlink(missing_ok=True)
        for pending in [*self._calls, *self._traces]:
            pending.connection.close()

    def idle(self) -> None:
        now = time.monotonic()
        self._advance_traces(now)
        for call in [c for c in self._calls if now >= c.deadline]:
            self._calls.remove(call)
            name = self.runner.by_tile[call.tile].service
            _answer(call.connection, {"ok": False, "error": f"no reply from {name} within the timeout"})
        while True:
            try:
                connection, _ = self._listener.accept()
            except BlockingIOError:
                return
            connection.setblocking(True)
            connection.settimeout(5.0)
            try:
                request = json.loads(connection.makefile("r", encoding="utf-8").readline())
                answer = self._handle(connection, request)
            except TesseraError as error:
                answer = {"ok": False, "error": str(error)}
            except (OSError, ValueError, KeyError, TypeError) as error:
                answer = {"ok": False, "error": f"bad request: {error}"}
            if answer is not None:
                _answer(connection, answer)

    def _handle(self, connection: socket.socket, request: dict[str, Any]) -> dict[str, Any] | None:
        op = request["op"]
        runner = self.runner
        if op == "ps":
            return {"ok": True, "rows": runner.ps()}
        if op == "identify":
            return {"ok": True, "info": runner.chip.info.to_bytes().hex()}
        if op == "trace":
            self._start_trace(connection, float(request["seconds"]), float(request["interval"]))
            return None
        name = request["name"]
        if op == "send" or op == "call":
            tag, words = int(request.get("tag", 0)), [int(w) for w in request["words"]]
            io_node = io_service_node(name, runner.chip) if op == "send" else None
            if io_node is not None:  # the LEDs: no tile, nothing to trace
                runner.chip.send(io_node, tag, words)
                return {"ok": True}
            tile = runner.service(name).tile.tile
            runner.chip.send(tile, tag, words)
            for tracing in self._traces:
                tracing.recorder.sent(tile, tag, words)
            if op == "send":
                return {"ok": True}
            self._calls.append(_Call(connection, tile, time.monotonic() + float(request.get("timeout", 2.0))))
            return None
        if op == "stop":
            runner.stop_service(name)
            return {"ok": True}
        if op == "restart":
            runner.restart_service(name)
            return {"ok": True}
        if op == "reload":
            path = Path(request["image"])
            summary = runner.reload_service(name, read_image(path), str(path), float(request["timeout"]))
            return {"ok": True, "summary": summary}
        raise SessionError(f"unknown request {op!r}")

    def _start_trace(self, connection: socket.socket, seconds: float, interval: float) -> None:
        runner = self.runner
        recorder = TraceRecorder(runner.chip, {t.tile: t.service for t in runner.image.tiles},
                                 {t.tile: t.permissions for t in runner.image.tiles})
        recorder.sample()
        runner.watchers.append(recorder.observe)
        now = time.monotonic()
        self._traces.append(_Tracing(connection, recorder, now + seconds, interval, now + interval))

    def _advance_traces(self, now: float) -> None:
        """Sample the traces that are due; answer those whose window is over."""
        for tracing in list(self._traces):
            if now >= tracing.next_sample or now >= tracing.deadline:
                tracing.recorder.sample()
                tracing.next_sample += tracing.interval
            if now >= tracing.deadline:
                self._traces.remove(tracing)
                self.runner.watchers.remove(tracing.recorder.observe)
                _answer(tracing.connection, {"ok": True, "trace": tracing.recorder.trace.to_json()})

    def _reply_to_call(self, message: Incoming) -> bool:
        for call in self._calls:
            if call.tile == message.source:
                self._calls.remove(call)
                _answer(call.connection, {"ok": True, "words": list(message.words), "tag": message.tag})
                return True
        return False


def _answer(connection: socket.socket, answer: dict[str, Any]) -> None:
    try:
        connection.sendall((json.dumps(answer) + "\n").encode())
    except OSError:
        pass
    connection.close()


def find_session(target: str) -> int | None:
    """The port of the session serving `target`, or None (a stale file of a dead process is removed)."""
    path = session_file(target)
    try:
        record = json.loads(path.read_text())
        os.kill(int(record["pid"]), 0)
        return int(record["port"])
    except FileNotFoundError:
        return None
    except (ProcessLookupError, ValueError, KeyError, OSError):
        path.unlink(missing_ok=True)
        return None


def request(port: int, message: dict[str, Any], timeout: float = REQUEST_TIMEOUT_S) -> dict[str, Any]:
    """One request to a session; SessionError (one line) if it fails."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as connection:
            connection.sendall((json.dumps(message) + "\n").encode())
            line = connection.makefile("r", encoding="utf-8").readline()
    except OSError as error:
        raise SessionError(f"the running `tessera run` session did not answer: {error}") from None
    if not line:
        raise SessionError("the running `tessera run` session closed the connection without answering")
    answer = json.loads(line)
    if not answer.get("ok"):
        raise SessionError(answer.get("error", "the session refused the request"))
    return answer

"""The virtual board: the chip top compiled with Verilator (or Icarus), serving its host link on TCP and a pty.

Contract:
- A `ChipSpec` names the chip top's factory (`module:attr` or `path/to/file.py:attr`) and its parameters. The
  board always elaborates it with `link="bytes"` (byte streams `rx`/`tx`, see docs/virtual-board.md).
- `build_board(spec, simulator=, trace=, pgo=)` writes the Verilog and compiles it once into
  `build/vboard/<hash>/` (hash over the Verilog text, the simulator's version, the harness source and the build
  options). `pgo=True` (untraced Verilator only) makes it a profile-guided build: compiled instrumented, trained
  on the ping-pong demo, compiled again with that profile, which stays in the build; when the training fails
  (a chip that cannot boot ping-pong) the second compile is a plain -O2 one, and `BoardBuild.profile` says which.
  A second build of the same parameters with unchanged sources reuses it without even regenerating the Verilog:
  an index maps (factory, parameters, chip sources, tool versions) to the finished build.
  Concurrent builders of one design wait on a file lock instead of compiling twice.
- `VirtualBoard.start(build, ...)` runs the board as a child process, reads its machine-readable line
  `TESSERA-VBOARD listening tcp=HOST:PORT control=HOST:PORT pty=PATH pid=PID` (pty=- without a pty) and
  offers the control commands (`stats`, `reset`, `stop`). The chip runs free inside the child: the Verilator
  harness (sim/vboard_main.cpp) toggles the clock in C++; the Icarus fallback (sim/vboard_icarus.py) runs a
  Verilog testbench that clocks itself.
- A board started from the command line (`python -m tessera.sim.virtual_board`, `tessera sim`) is registered
  under `build/vboard/running/` so that `SimLink` (tessera.os.link) attaches to it instead of starting another.
"""

from __future__ import annotations

import argparse
import ast
import fcntl
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import io
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Literal

from tessera.sim import toolchain, vboard_verilator

Simulator = Literal["verilator", "icarus"]
SIMULATORS: tuple[Simulator, ...] = ("verilator", "icarus")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BUILD_ROOT = PROJECT_ROOT / "build" / "vboard"
RUNNING_ROOT = BUILD_ROOT / "running"
HARNESS_SOURCE = Path(__file__).with_name("vboard_main.cpp")
ICARUS_SERVER_SOURCE = Path(__file__).with_name("vboard_icarus.py")
VERILATOR_BUILD_SOURCE = Path(__file__).with_name("vboard_verilator.py")

#: The chip top every board builds unless told otherwise (hw/chip.py); TESSERA_SIM_CHIP overrides it.
DEFAULT_CHIP = os.environ.get("TESSERA_SIM_CHIP", "tessera.hw.chip:TesseraChip")
TOP_MODULE = "tessera_chip"
#: The factory behind `--board`: a board build's chip with the byte-stream link.
BOARD_CHIP = "tessera.boards.build:board_chip"
#: Ports the harness drives and reads; their absence means the chip was not elaborated with link="bytes".
REQUIRED_PORTS = ("clk", "rst", "rx__payload", "rx__valid", "rx__ready", "tx__payload", "tx__valid", "tx__ready")

LISTENING_PREFIX = "TESSERA-VBOARD listening "
STOPPED_PREFIX = "TESSERA-VBOARD stopped "

#: Verilator options besides --cc --exe --build: Amaranth's Verilog trips lint warnings (not errors); X values
#: are resolved for speed, which is safe because Amaranth gives every register an initial value. The model's
#: C++ is compiled with -O1 instead of verilated.mk's -Os: the 8-tile model runs as fast (12.4 k against 12.6 k
#: instructions per cycle); -O2 compiled longer for 2 % fewer instructions (docs/virtual-board.md, Speed).
VERILATOR_ARGS: tuple[str, ...] = (
    "-O3", "-Wno-fatal", "--x-assign", "fast", "--x-initial", "fast", "-MAKEFLAGS", "OPT_FAST=-O1",
)  # fmt: skip
TRACE_ARGS: tuple[str, ...] = ("--trace-fst", "--timescale", "1ns/1ns", "-CFLAGS", "-DVBOARD_TRACE")
#: Profile-guided builds (`pgo=True`, docs/virtual-board.md, Speed): the model is compiled twice at -O2, first
#: instrumented (PGO_GENERATE_ARGS), then with the profile of a training run (PGO_USE_ARGS). -O2 on both sides: GCC
#: matches a profile to the compiled functions only at the same optimisation level, and only -O2 splits the code
#: the training never ran into separate cold sections. Without a profile (training failed) the second compile
#: is a plain -O2 build; a profile that does not match a function is ignored for it instead of failing the build.
PGO_ARGS: tuple[str, ...] = ("-MAKEFLAGS", "OPT_FAST=-O2")
PGO_GENERATE_ARGS: tuple[str, ...] = (
    "-CFLAGS", "-fprofile-generate", "-CFLAGS", "-fprofile-update=single", "-LDFLAGS", "-fprofile-generate",
)  # fmt: skip
PGO_USE_ARGS: tuple[str, ...] = (
    "-CFLAGS", "-fprofile-use", "-CFLAGS", "-Wno-missing-profile", "-CFLAGS", "-Wno-coverage-mismatch",
)  # fmt: skip
#: Wall-clock seconds the training keeps ping-pong bouncing after the boot.
PGO_TRAINING_S = 2.0
#: Icarus options. Verilog-2005, not 2012: Amaranth starts every combinational `always @*` block through a
#: `reg ... = 0` initialiser, which is an event at time 0 in Verilog-2005 but not in SystemVerilog, where those
#: blocks would leave their outputs X until an input changes (the chip's tiles then report X states).
ICARUS_ARGS: tuple[str, ...] = ("-g2005",)
BUILD_JOBS = 2
_COMPLETE_MARKER = ".tessera-build-complete"
_START_TIMEOUT_S = 60.0
#: Far more ping-pong rounds than any training or measurement lasts: ping is still bouncing when the board stops.
PING_ROUNDS = 100_000_000


class BoardError(RuntimeError):
    """The virtual board could not be built, started or controlled; the message says why in one line."""


# ---------------------------------------------------------------------------------------------------------
# What to build


@dataclass(frozen=True)
class ChipSpec:
    """A chip top: `factory` is `package.module:attr` or `path/to/file.py:attr`; `params` its keyword arguments."""

    factory: str = DEFAULT_CHIP
    params: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "link" in self.params:
            raise BoardError("chip parameter 'link' is chosen by the virtual board (always 'bytes'); leave it out")
        if ":" not in self.factory:
            raise BoardError(f"chip factory {self.factory!r} must look like 'package.module:Class' or 'file.py:Class'")

    def load_module(self) -> ModuleType:
        location = self.factory.rsplit(":", 1)[0]
        if location.endswith(".py"):
            path = Path(location).resolve()
            if not path.is_file():
                raise BoardError(f"chip factory file {location} does not exist")
            name = path.stem
            module = sys.modules.get(name)
            if module is not None and Path(getattr(module, "__file__", "") or "").resolve() == path:
                return module
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        try:
            return importlib.import_module(location)
        except ModuleNotFoundError as error:
            raise BoardError(f"chip factory module {location!r} not found ({error})") from None

    def load(self) -> Callable[..., object]:
        attr = self.factory.rsplit(":", 1)[1]
        module = self.load_module()
        try:
            return getattr(module, attr)
        except AttributeError:
            raise BoardError(f"chip factory {self.factory!r}: {module.__name__} has no {attr!r}") from None

    def elaborate(self) -> object:
        factory = self.load()
        try:
            return factory(**self.params, link="bytes")
        except (TypeError, ValueError) as error:  # an unknown, missing or refused parameter
            raise BoardError(f"chip {self.factory} with parameters {self.params_text()}: {error}") from None

    def params_text(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True, default=repr)


def chip_verilog(spec: ChipSpec) -> str:
    """The chip top's Verilog (module `tessera_chip`), checked for the ports the harness needs."""
    from amaranth.back import verilog

    text = verilog.convert(spec.elaborate(), name=TOP_MODULE)
    header = text.split(f"module {TOP_MODULE}(", 1)
    if len(header) != 2:
        raise BoardError(f"{spec.factory}: the generated Verilog has no module {TOP_MODULE}")
    ports = set(re.findall(r"\b(?:input|output)\s+(?:\[[^\]]*\]\s*)?(\w+)\s*;", header[1].split("endmodule", 1)[0]))
    missing = [port for port in REQUIRED_PORTS if port not in ports]
    if missing:
        raise BoardError(f"{spec.factory} with link='bytes' lacks the ports {', '.join(missing)}")
    return text


def simulator_version(simulator: Simulator) -> str:
    if simulator == "verilator":
        return "verilator " + importlib.metadata.version("verilator")
    if simulator == "icarus":
        if shutil.which("iverilog") is None:
            raise BoardError("iverilog not found on PATH (`make setup` installs it)")
        return subprocess.run(["iverilog", "-V"], capture_output=True, text=True).stdout.splitlines()[0]
    raise BoardError(f"unknown simulator {simulator!r}: expected one of {', '.join(SIMULATORS)}")


def _digest(parts: Sequence[str | bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0\0")
    return digest.hexdigest()[:16]


def _chip_sources(spec: ChipSpec) -> list[Path]:
    """Every source file that can change the chip's Verilog: hw/ and firmware/ (boot code, ISA constants) and
    the factory's own module. A false alarm only costs regenerating the Verilog: identical Verilog still finds
    its compiled build."""
    module = spec.load_module()
    files = {*(PROJECT_ROOT / "hw").rglob("*.py"), *(PROJECT_ROOT / "firmware").rglob("*.py")}
    if getattr(module, "__file__", None):
        files.add(Path(module.__file__))
    return sorted(path.resolve() for path in files)


def design_key(spec: ChipSpec, simulator: Simulator, trace: bool = False, pgo: bool = False) -> str:
    """Names a build without elaborating: factory, parameters, chip sources, Amaranth and simulator versions."""
    parts: list[str | bytes] = [spec.factory, spec.params_text(), simulator_version(simulator), str(trace)]
    parts.append("\0".join(_build_options(simulator, trace, pgo)))
    parts.append(importlib.metadata.version("amaranth"))
    parts.append(_harness_source(simulator))
    for path in _chip_sources(spec):
        parts += [str(path), path.read_bytes()]
    return _digest(parts)


def _build_options(simulator: Simulator, trace: bool, pgo: bool = False) -> tuple[str, ...]:
    """The options that name a build. A profile-guided build adds PGO_ARGS (make takes the last OPT_FAST); the
    profile's own flags are not part of the name: they depend on how the training went (see _compile)."""
    if simulator != "verilator":
        return ICARUS_ARGS
    return VERILATOR_ARGS + (TRACE_ARGS if trace else ()) + (PGO_ARGS if pgo else ())


def _harness_source(simulator: Simulator) -> str:
    if simulator == "verilator":  # the C++ loop and the board top Verilog around the chip
        return HARNESS_SOURCE.read_text() + VERILATOR_BUILD_SOURCE.read_text()
    return ICARUS_SERVER_SOURCE.read_text()


# ---------------------------------------------------------------------------------------------------------
# Building


@dataclass(frozen=True)
class BoardBuild:
    """A compiled board: `executable` is the Verilator binary, or the vvp file for Icarus; `traced` if it can
    write waveforms (Verilator's traced variant, and every Icarus build)."""

    simulator: Simulator
    traced: bool
    build_dir: Path
    executable: Path
    key: str  # the design key (see design_key), also the name under build/vboard/running/
    rebuilt: bool  # False when a finished build was reused
    seconds: float  # time this build_board call took
    profile: str | None = None  # profile-guided builds: "trained", or "untrained: <why>" (a plain -O2 build)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _has_fst_libraries() -> bool:
    """Verilator 5.48's FST writer compiles against lz4.h and zlib.h and links -llz4 -lz."""
    include_dirs = [Path("/usr/include"), Path("/usr/local/include")]
    return all(any((folder / header).exists() for folder in include_dirs) for header in ("lz4.h", "zlib.h"))


def _executable_name(simulator: Simulator) -> str:
    return "vboard" if simulator == "verilator" else "vboard.vvp"


def build_board(
    spec: ChipSpec, *, simulator: Simulator = "verilator", trace: bool = False, pgo: bool = False
) -> BoardBuild:
    """Compile the chip for the virtual board, or reuse an earlier build of the same design (see module doc).
    `pgo`: a profile-guided Verilator build (trained on ping-pong, see _train_profile; about 2.5 times the compile
    time of a plain build, for a faster model)."""
    started = time.monotonic()
    toolchain.activate()
    # The Icarus testbench can always trace (vvp -fst); only Verilator compiles a traced variant.
    trace = trace and simulator == "verilator"
    if trace and not _has_fst_libraries():
        raise BoardError("Verilator's FST tracing needs lz4 and zlib headers: apt-get install liblz4-dev zlib1g-dev")
    if pgo and (simulator != "verilator" or trace):
        raise BoardError("profile-guided builds (pgo) are for untraced Verilator boards only")
    key = design_key(spec, simulator, trace, pgo)
    index = BUILD_ROOT / "index" / f"{key}.json"
    with _locked(BUILD_ROOT / "locks" / f"{key}.lock"):
        if index.exists():
            build_dir = BUILD_ROOT / json.loads(index.read_text())["build_dir"]
            if (build_dir / _COMPLETE_MARKER).exists():
                return _finished_build(build_dir, simulator, trace, key, False, started)
        verilog_text = chip_verilog(spec)
        if simulator == "verilator":
            verilog_text += vboard_verilator.board_top_verilog(verilog_text, TOP_MODULE)
        version = simulator_version(simulator)
        options = _build_options(simulator, trace, pgo)
        build_name = _digest([verilog_text, version, _harness_source(simulator), "\0".join(options)])
        build_dir = BUILD_ROOT / f"{simulator}{'-trace' if trace else ''}{'-pgo' if pgo else ''}-{build_name}"
        with _locked(BUILD_ROOT / "locks" / f"{build_dir.name}.lock"):
            rebuilt = not (build_dir / _COMPLETE_MARKER).exists()
            if rebuilt:
                _compile(build_dir, verilog_text, spec, simulator, trace, pgo)
        index.parent.mkdir(parents=True, exist_ok=True)
        index.write_text(json.dumps({"build_dir": build_dir.name, "factory": spec.factory, "params": spec.params_text()}))
    return _finished_build(build_dir, simulator, trace, key, rebuilt, started)


def _finished_build(
    build_dir: Path, simulator: Simulator, trace: bool, key: str, rebuilt: bool, started: float
) -> BoardBuild:
    profile = json.loads((build_dir / _COMPLETE_MARKER).read_text()).get("profile")
    executable = build_dir / _executable_name(simulator)
    traced = trace or simulator == "icarus"
    return BoardBuild(simulator, traced, build_dir, executable, key, rebuilt, time.monotonic() - started, profile)


def _verilator_command(
    build_dir: Path, options: Sequence[str], runtime: vboard_verilator.RuntimeCache, folder: str
) -> list[str]:
    """Verilator's build of the board into `build_dir/folder` (objects) and `build_dir/folder/vboard`."""
    return [
        "verilator", "--cc", "--exe", "--build", *options, *runtime.build_args(),
        "-j", str(BUILD_JOBS), "--top-module", vboard_verilator.BOARD_TOP, "--prefix", "Vboard", "--Mdir", folder,
        "-o", str(build_dir / _executable_name("verilator")), "-LDFLAGS", "-lutil",
        f"{TOP_MODULE}.v", HARNESS_SOURCE.name,
    ]  # fmt: skip


def _run_build(command: Sequence[str], build_dir: Path, log_path: Path, what: str) -> None:
    with open(log_path, "w") as log:
        result = subprocess.run(command, cwd=build_dir, stdout=log, stderr=subprocess.STDOUT, env=toolchain.tool_env())
    if result.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
        raise BoardError(f"{what} build failed (exit {result.returncode}); log {log_path}:\n{tail}")


def _compile(build_dir: Path, verilog_text: str, spec: ChipSpec, simulator: Simulator, trace: bool, pgo: bool) -> None:
    # A folder without the marker is an interrupted build: start it again from nothing.
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir(parents=True)
    verilog_path = build_dir / f"{TOP_MODULE}.v"
    verilog_path.write_text(verilog_text)
    marker: dict[str, object] = {}
    runtime: vboard_verilator.RuntimeCache | None = None
    if simulator == "verilator":
        shutil.copyfile(HARNESS_SOURCE, build_dir / HARNESS_SOURCE.name)
        # The runtime objects do not depend on the model's optimisation: plain and profile-guided builds share them.
        options = _build_options(simulator, trace)
        runtime = vboard_verilator.RuntimeCache(BUILD_ROOT / "runtime", simulator_version(simulator), options)
        if pgo:
            marker["profile"] = _train_profile(build_dir, spec, (*options, *PGO_ARGS), runtime)
            options = (*options, *PGO_ARGS, *PGO_USE_ARGS)
        command = _verilator_command(build_dir, options, runtime, "obj")
    else:
        from tessera.sim import vboard_icarus

        testbench = build_dir / "vboard_tb.v"
        testbench.write_text(vboard_icarus.testbench_verilog(TOP_MODULE))
        command = ["iverilog", *ICARUS_ARGS, "-o", "vboard.vvp", "-s", "vboard_tb", testbench.name, verilog_path.name]
    _run_build(command, build_dir, build_dir / "build.log", simulator)
    if runtime is not None:
        runtime.keep(build_dir / "obj")
    (build_dir / _COMPLETE_MARKER).write_text(json.dumps({"command": command, **marker}))


def _train_profile(
    build_dir: Path, spec: ChipSpec, options: Sequence[str], runtime: vboard_verilator.RuntimeCache
) -> str:
    """The first half of a profile-guided build: compile the board instrumented into `build_dir/train/`, boot
    ping-pong on it and keep it bouncing for PGO_TRAINING_S, and leave the profile (GCC's .gcda files, one per
    object) in `build_dir/obj/`, where the second compile finds it and the build keeps it. Returns "trained", or
    "untrained: <why>" when there is no profile: the second compile is then a plain one (any chip the training
    cannot boot, such as a stand-in top, still gets its board)."""
    train_dir = build_dir / "train"
    train_dir.mkdir()
    shutil.copyfile(build_dir / f"{TOP_MODULE}.v", train_dir / f"{TOP_MODULE}.v")
    shutil.copyfile(HARNESS_SOURCE, train_dir / HARNESS_SOURCE.name)
    try:
        tiles = _training_tiles(spec)  # before the instrumented compile, which is wasted on a chip without tiles
        _run_build(_verilator_command(train_dir, (*options, *PGO_GENERATE_ARGS), runtime, "obj"), train_dir,
                   build_dir / "train.log", "instrumented")  # fmt: skip
        _run_training(BoardBuild("verilator", False, train_dir, train_dir / "vboard", "training", True, 0.0), tiles)
    except Exception as error:  # any failure of the optional training only costs the profile
        outcome = f"untrained: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    else:
        profiles = sorted((train_dir / "obj").glob("*.gcda"))
        outcome = "trained" if profiles else "untrained: the training run wrote no profile"
        (build_dir / "obj").mkdir()
        for path in profiles:
            shutil.copy2(path, build_dir / "obj" / path.name)
    shutil.rmtree(train_dir, ignore_errors=True)
    return outcome


def _training_tiles(spec: ChipSpec) -> int:
    """The tile count of `spec` (its `tiles` parameter or the factory's default), which ping-pong needs >= 2 of."""
    parameter = inspect.signature(spec.load()).parameters.get("tiles")
    tiles = spec.params.get("tiles", None if parameter is None else parameter.default)
    if not isinstance(tiles, int) or tiles < 2:
        raise BoardError(f"chip {spec.factory} has no 'tiles' parameter of at least 2 for ping and pong")
    return tiles


def _run_training(build: BoardBuild, tiles: int) -> None:
    """Boot ping-pong on `build` (a chip of `tiles` tiles) and keep one long ping going for PGO_TRAINING_S; the
    board writes its profile when it stops."""
    from tessera.os.chip import Chip
    from tessera.os.demo_host import DemoSystem
    from tessera.os.link import TcpLink

    with VirtualBoard.start(build, pty=False) as board:
        image = pingpong_image(tiles, build.build_dir)
        with TcpLink(board.endpoints.host, board.endpoints.port) as link:
            system = DemoSystem(Chip(link, reply_timeout=2.0), image, events=io.StringIO())
            system.send("ping", [PING_ROUNDS])
            time.sleep(PGO_TRAINING_S)


def pingpong_image(tiles: int, folder: Path) -> Path:
    """The ping-pong demo's image (os/demos/pingpong) for a chip of `tiles` tiles (its manifest with the chip size
    changed), written into `folder`."""
    from tessera.os.build import build_image
    from tessera.os.demo_host import DEMOS_ROOT
    from tessera.os.image import write_image
    from tessera.os.manifest import parse_manifest

    manifest_path = DEMOS_ROOT / "pingpong" / "app.toml"
    text = manifest_path.read_text()
    if "tiles = 8" not in text:
        raise RuntimeError(f"{manifest_path}: expected 'tiles = 8' in [chip] to resize the demo")
    manifest = parse_manifest(text.replace("tiles = 8", f"tiles = {tiles}", 1), manifest_path)
    path = folder / f"pingpong_{tiles}.tsi"
    write_image(build_image(manifest), path)
    return path


# ---------------------------------------------------------------------------------------------------------
# Running


@dataclass(frozen=True)
class Endpoints:
    """Where a running board listens, as its `listening` line says."""

    host: str
    port: int
    control_port: int
    pty: str | None
    pid: int

    @classmethod
    def parse(cls, line: str) -> Endpoints:
        if not line.startswith(LISTENING_PREFIX):
            raise BoardError(f"not a listening line: {line.strip()!r}")
        fields = dict(item.split("=", 1) for item in line[len(LISTENING_PREFIX) :].split())
        host, port = fields["tcp"].rsplit(":", 1)
        control_port = int(fields["control"].rsplit(":", 1)[1])
        return cls(host, int(port), control_port, None if fields["pty"] == "-" else fields["pty"], int(fields["pid"]))

    def to_json(self) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "control_port": self.control_port, "pty": self.pty, "pid": self.pid}


def parse_stats(text: str) -> dict[str, float]:
    """`key=value` pairs of a `stats` reply or a `stopped` line; numeric values only (reason= is skipped)."""
    stats: dict[str, float] = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if sep and re.fullmatch(r"-?[0-9.]+", value):
            stats[key] = float(value)
    return stats


def control(endpoints: Endpoints, command: str, timeout: float = 5.0) -> str:
    """Send one control command to a running board and return its reply line (raises BoardError on `error`)."""
    try:
        with socket.create_connection((endpoints.host, endpoints.control_port), timeout=timeout) as connection:
            connection.sendall(command.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = connection.recv(4096)
                if not chunk:
                    break
                reply += chunk
    except OSError as error:
        raise BoardError(f"virtual board control at {endpoints.host}:{endpoints.control_port}: {error}") from None
    text = reply.decode().strip()
    if not text.startswith("ok"):
        raise BoardError(f"virtual board refused {command!r}: {text or 'no reply'}")
    return text


class VirtualBoard:
    """A running virtual board process; `stop()` (or leaving the `with` block) ends it and returns its stats."""

    def __init__(self, build: BoardBuild, process: subprocess.Popen[str], endpoints: Endpoints) -> None:
        self.build = build
        self.process = process
        self.endpoints = endpoints
        self.final_stats: dict[str, float] | None = None

    @classmethod
    def start(
        cls,
        build: BoardBuild,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int = 0,
        pty: bool = True,
        poll_us: int | None = None,
        poll_cycles: int | None = None,
        max_cycles: int | None = None,
        trace: Path | None = None,
        trace_start: int | None = None,
        trace_end: int | None = None,
        die_with_parent: bool = True,
    ) -> VirtualBoard:
        if (poll_us, poll_cycles)[build.simulator == "verilator"] is not None:
            raise BoardError("poll_us is for Verilator boards, poll_cycles for Icarus boards")
        if trace is not None and not build.traced:
            raise BoardError("--trace needs a traced build: build_board(..., trace=True)")
        args = ["--host", host, "--port", str(port), "--control-port", str(control_port)]
        args += [] if pty else ["--no-pty"]
        args += [] if poll_us is None else ["--poll-us", str(poll_us)]
        args += [] if poll_cycles is None else ["--poll-cycles", str(poll_cycles)]
        args += [] if max_cycles is None else ["--max-cycles", str(max_cycles)]
        args += ["--die-with-parent"] if die_with_parent else []
        if trace is not None:
            args += ["--trace", str(trace)]
            args += [] if trace_start is None else ["--trace-start", str(trace_start)]
            args += [] if trace_end is None else ["--trace-end", str(trace_end)]
        if build.simulator == "verilator":
            command = [str(build.executable), *args]
        else:
            command = [sys.executable, "-m", "tessera.sim.vboard_icarus", str(build.build_dir), *args]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=toolchain.tool_env())
        assert process.stdout is not None
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
            line = process.stdout.readline() if ready else ""
            if line.startswith(LISTENING_PREFIX):
                return cls(build, process, Endpoints.parse(line))
            if not ready or process.poll() is not None or not line:
                process.kill()
                process.wait()
                process.stdout.close()
                raise BoardError(f"virtual board {build.executable} did not start (exit {process.returncode})")

    def stats(self) -> dict[str, float]:
        """Counters of the running board: cycles, seconds, cycles_per_s, rx_bytes, tx_bytes."""
        return parse_stats(control(self.endpoints, "stats"))

    def reset(self) -> None:
        """Chip reset (as the board's reset button): rst held for a few cycles, queued link bytes dropped."""
        control(self.endpoints, "reset")

    def wait(self, timeout: float | None = None) -> dict[str, float]:
        """Wait for the board to stop by itself (e.g. --max-cycles) and return its final stats."""
        self.process.wait(timeout)
        return self._collect()

    def stop(self, timeout: float = 10.0) -> dict[str, float]:
        """Stop the board (control `shutdown`, then SIGTERM, then SIGKILL) and return its final stats."""
        if self.process.poll() is None:
            try:
                control(self.endpoints, "shutdown", timeout=timeout)
                self.process.wait(timeout)
            except (BoardError, subprocess.TimeoutExpired):
                self.process.terminate()
                try:
                    self.process.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        return self._collect()

    def _collect(self) -> dict[str, float]:
        if self.final_stats is None:
            assert self.process.stdout is not None
            rest = self.process.stdout.read()
            self.process.stdout.close()
            stopped = [line for line in rest.splitlines() if line.startswith(STOPPED_PREFIX)]
            self.final_stats = parse_stats(stopped[-1]) if stopped else {}
        return self.final_stats

    def __enter__(self) -> VirtualBoard:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


# ---------------------------------------------------------------------------------------------------------
# The registry of boards started from the command line


def _registry_path(key: str) -> Path:
    return RUNNING_ROOT / f"{key}.json"


def register(board: VirtualBoard) -> Path:
    path = _registry_path(board.build.key)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(board.endpoints.to_json()))
    return path


def find_running(key: str) -> Endpoints | None:
    """The endpoints of a registered board for this design key if its process is still alive, else None."""
    path = _registry_path(key)
    try:
        fields = json.loads(path.read_text())
        endpoints = Endpoints(**fields)
        os.kill(endpoints.pid, 0)
    except (OSError, ValueError, TypeError):
        return None
    return endpoints


# ---------------------------------------------------------------------------------------------------------
# Command line


def parse_param(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"chip parameter {text!r} must look like NAME=VALUE")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value


def argument_parser(prog: str = "tessera sim") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="Build the chip and serve it as a virtual board.")
    parser.add_argument("--chip", default=DEFAULT_CHIP, help="chip top factory, module:attr or file.py:attr")
    parser.add_argument("--param", action="append", type=parse_param, default=[], metavar="NAME=VALUE")
    parser.add_argument("--tiles", type=int, help="shorthand for --param tiles=N")
    parser.add_argument("--board", help="the chip `make build BOARD=...` builds for this board (its tiles, memory, "
                        "mailboxes, LEDs and buttons), instead of --chip/--param")
    parser.add_argument("--simulator", choices=SIMULATORS, default="verilator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="TCP port of the host link (0: any free port)")
    parser.add_argument("--control-port", type=int, default=0)
    parser.add_argument("--no-pty", action="store_true", help="serve TCP only")
    parser.add_argument("--poll-us", type=int, help="Verilator: microseconds between socket checks (default 100)")
    parser.add_argument("--poll-cycles", type=int, help="Icarus: cycles between checks of the byte files (default 16)")
    parser.add_argument("--max-cycles", type=int, help="stop after this many cycles")
    parser.add_argument("--trace", type=Path, metavar="FILE.fst", help="write waveforms (builds a traced variant)")
    parser.add_argument("--trace-start", type=int, metavar="CYCLE")
    parser.add_argument("--trace-end", type=int, metavar="CYCLE")
    parser.add_argument("--pgo", action="store_true",
                        help="Verilator: profile-guided build (trained on ping-pong; ~2.5x compile time, faster model)")
    parser.add_argument("--build-only", action="store_true", help="build (or find in the cache) and exit")
    return parser


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:.3f}"


def main(argv: Sequence[str] | None = None, prog: str = "tessera sim") -> int:
    parser = argument_parser(prog)
    options = parser.parse_args(argv)
    params = dict(options.param)
    if options.tiles is not None:
        params["tiles"] = options.tiles
    chip = options.chip
    if options.board is not None:
        if options.param or chip != DEFAULT_CHIP:
            parser.error("--board chooses the chip and its parameters: leave out --chip and --param")
        chip, params = BOARD_CHIP, {"board": options.board, **params}
    try:
        spec = ChipSpec(chip, params)
        build = build_board(spec, simulator=options.simulator, trace=options.trace is not None, pgo=options.pgo)
        profile = "" if build.profile is None else f" profile={build.profile.partition(':')[0]}"
        built = f"dir={build.build_dir} rebuilt={int(build.rebuilt)} seconds={build.seconds:.2f}{profile}"
        print(f"TESSERA-VBOARD build {built}")
        if options.build_only:
            return 0
        board = VirtualBoard.start(
            build, host=options.host, port=options.port, control_port=options.control_port, pty=not options.no_pty,
            poll_us=options.poll_us, poll_cycles=options.poll_cycles, max_cycles=options.max_cycles, trace=options.trace,
            trace_start=options.trace_start, trace_end=options.trace_end, die_with_parent=True,
        )  # fmt: skip
    except BoardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    registry = register(board)  # before the listening line: whoever reads that line can find the board
    endpoints = board.endpoints
    print(
        f"{LISTENING_PREFIX}tcp={endpoints.host}:{endpoints.port} control={endpoints.host}:{endpoints.control_port}"
        f" pty={endpoints.pty or '-'} pid={endpoints.pid}",
        flush=True,
    )
    # SIGINT and SIGTERM are passed on to the board (Ctrl-C in a terminal reaches it directly as well; a second
    # signal changes nothing); then wait for its report.
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda received, _frame: board.process.send_signal(received))
    try:
        stats = board.wait()
    finally:
        registry.unlink(missing_ok=True)
    print(STOPPED_PREFIX + " ".join(f"{key}={_number(value)}" for key, value in stats.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(prog="python -m tessera.sim.virtual_board"))

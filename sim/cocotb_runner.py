"""Build an Amaranth design once per Verilog text and simulator, and run cocotb test modules on it.

Contract:
- `build(component, name, simulator)` writes the component's Verilog into
  `build/cocotb/<name>-<simulator>-<hash>/` (hash over the Verilog text, the simulator and the build options) and
  compiles it with cocotb's Python runner. A finished build is reused: nothing is rebuilt while the Verilog is
  unchanged. Builds are serialised by a file lock per build directory, so pytest-xdist workers that need the same
  design wait for one compile instead of racing in the same folder.
- `run(build, test_module, ...)` runs cocotb tests from `tests/cocotb/<test_module>.py` in a fresh run folder of
  its own (parallel runs of one build never share files), passes parameters through `TESSERA_*` environment
  variables and an optional JSON payload file, collects an optional JSON output that the test module wrote,
  and raises `CocotbFailure` (naming the failing tests, their messages and the log tail) when any test failed or
  the simulator died.
- Inside a cocotb test module, `load_payload()` and `save_output()` are the other ends of the payload/output files.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.etree import ElementTree

from amaranth.back import verilog
from amaranth.hdl import Elaboratable

from tessera.sim import toolchain

Simulator = Literal["verilator", "icarus"]
SIMULATORS: tuple[Simulator, ...] = ("verilator", "icarus")

PROJECT_ROOT = Path(__file__).resolve().parent.parent
COCOTB_BUILD_ROOT = PROJECT_ROOT / "build" / "cocotb"
COCOTB_TEST_DIR = PROJECT_ROOT / "tests" / "cocotb"
TIMESCALE = ("1ns", "1ps")

#: Verilator options: Amaranth's Verilog trips lint warnings (not errors); the rest trade X-accuracy for speed,
#: which is safe because Amaranth gives every register an initial value.
VERILATOR_BUILD_ARGS: tuple[str, ...] = ("-Wno-fatal", "-O3", "--x-assign", "fast", "--x-initial", "fast")
#: Icarus options (after cocotb's own -g2012, so they win): Amaranth starts each combinational `always @*`
#: block by changing a register from its declaration initialiser at time 0. Under -g2012 declaration initialisers
#: run before any process waits, so that event is lost and outputs stay X until their inputs first change;
#: Verilog-2005 semantics keep the event.
ICARUS_BUILD_ARGS: tuple[str, ...] = ("-g2005",)

#: Environment variables through which `run` hands files to the cocotb test module.
PAYLOAD_ENV = "TESSERA_COCOTB_PAYLOAD"
OUTPUT_ENV = "TESSERA_COCOTB_OUTPUT"

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMPLETE_MARKER = ".tessera-build-complete"
_LOG_TAIL_LINES = 60


class CocotbFailure(AssertionError):
    """A build failed, some cocotb tests failed, or the simulator ended without writing its results."""


@dataclass(frozen=True)
class CocotbBuild:
    """A compiled design, ready for any number of `run` calls."""

    name: str  # the Verilog top module
    simulator: Simulator
    build_dir: Path
    verilog_path: Path
    rebuilt: bool  # False when an earlier build with the same Verilog was reused


@dataclass(frozen=True)
class TestOutcome:
    """One cocotb test's result as results.xml reports it."""

    name: str
    passed: bool
    message: str


@dataclass(frozen=True)
class CocotbRun:
    """What one `run` produced. run_dir (with sim.log) is None unless kept: passing runs are deleted."""

    run_dir: Path | None
    outcomes: tuple[TestOutcome, ...]
    output: object  # the JSON value the test module passed to save_output(), or None


def design_verilog(
    component: Elaboratable, name: str, ports: Sequence[object] | None = None, platform: object = None
) -> str:
    """Verilog for component with top module `name`; `ports` only for elaboratables without a signature;
    `platform` is what the design elaborates for (None: plain simulation)."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"design name {name!r} is not a Verilog identifier")
    if ports is None:
        return verilog.convert(component, name=name, platform=platform)
    return verilog.convert(component, name=name, ports=list(ports), platform=platform)


def _build_args(simulator: Simulator, extra: Sequence[str]) -> list[str]:
    if simulator == "verilator":
        return [*VERILATOR_BUILD_ARGS, *extra]
    if simulator == "icarus":
        return [*ICARUS_BUILD_ARGS, *extra]
    raise ValueError(f"unknown simulator {simulator!r}: expected one of {', '.join(SIMULATORS)}")


def _build_key(verilog_text: str, simulator: Simulator, build_args: Sequence[str], sources: Sequence[Path]) -> str:
    import cocotb

    digest = hashlib.sha256()
    library = [source.read_text() for source in sources]
    for part in (verilog_text, simulator, "\0".join(build_args), "/".join(TIMESCALE), cocotb.__version__, *library):
        digest.update(part.encode())
        digest.update(b"\0\0")
    return digest.hexdigest()[:16]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if needed) for the duration of the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(
    component: Elaboratable,
    name: str,
    simulator: Simulator,
    *,
    ports: Sequence[object] | None = None,
    extra_build_args: Sequence[str] = (),
    platform: object = None,
    library_sources: Sequence[Path] = (),
) -> CocotbBuild:
    """Compile `component` as Verilog module `name` for `simulator`, or reuse the build of identical Verilog.

    `platform` is passed to elaboration; `library_sources` are Verilog files compiled beside the design (models of
    the vendor primitives it instantiates for that platform)."""
    from cocotb_tools.runner import get_runner

    toolchain.activate()
    verilog_text = design_verilog(component, name, ports, platform)
    build_args = _build_args(simulator, extra_build_args)
    key = _build_key(verilog_text, simulator, build_args, library_sources)
    build_dir = COCOTB_BUILD_ROOT / f"{name}-{simulator}-{key}"
    verilog_path = build_dir / f"{name}.v"
    marker = build_dir / _COMPLETE_MARKER
    with _locked(build_dir.with_name(build_dir.name + ".lock")):
        if marker.exists():
            return CocotbBuild(name, simulator, build_dir, verilog_path, rebuilt=False)
        # A folder without the marker is a build that was interrupted: start it again from nothing.
        shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True)
        verilog_path.write_text(verilog_text)
        runner = get_runner(simulator)
        try:
            runner.build(
                sources=[verilog_path, *library_sources],
                hdl_toplevel=name,
                build_dir=build_dir,
                timescale=TIMESCALE,
                build_args=build_args,
                always=True,
                log_file=build_dir / "build.log",
            )
        except (RuntimeError, SystemExit) as error:
            raise CocotbFailure(
                f"{simulator} build of {name} failed ({error}); log {build_dir / 'build.log'}:\n"
                f"{_log_tail(build_dir / 'build.log')}"
            ) from None
        marker.write_text(json.dumps({"simulator": simulator, "build_args": build_args}))
    return CocotbBuild(name, simulator, build_dir, verilog_path, rebuilt=True)


def _outcomes(results_xml: Path) -> tuple[TestOutcome, ...]:
    outcomes = []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        problems = [child for child in case if child.tag in ("failure", "error")]
        message = "; ".join(p.get("message", "") or (p.text or "").strip() for p in problems)
        outcomes.append(TestOutcome(case.get("name", "?"), passed=not problems, message=message))
    return tuple(outcomes)


def _log_tail(log_path: Path) -> str:
    if not log_path.exists():
        return "(no simulator log)"
    lines = log_path.read_text(errors="replace").splitlines()
    return "\n".join(lines[-_LOG_TAIL_LINES:])


def run(
    design: CocotbBuild,
    test_module: str,
    *,
    env: Mapping[str, str] | None = None,
    payload: object = None,
    testcase: str | None = None,
    seed: int | None = None,
    test_dir: Path = COCOTB_TEST_DIR,
    keep_run_dir: bool = False,
) -> CocotbRun:
    """Run the cocotb tests in `test_dir/test_module.py` on `design`.

    `env` keys must start with `TESSERA_` (cocotb's runner lets the parent environment override them, so a
    project prefix keeps them from colliding). `payload` is written as JSON and reached with `load_payload()`.
    Raises CocotbFailure unless every test passed; a failed run's folder is always kept for its log.
    """
    from cocotb_tools.runner import get_runner

    toolchain.activate()
    env = dict(env or {})
    for key in env:
        if not key.startswith("TESSERA_"):
            raise ValueError(f"cocotb parameter {key!r} must start with TESSERA_")
    if not (test_dir / f"{test_module}.py").is_file():
        raise FileNotFoundError(f"cocotb test module {test_module!r} not found in {test_dir}")
    run_dir = design.build_dir / "runs" / uuid.uuid4().hex[:12]
    run_dir.mkdir(parents=True)
    output_path = run_dir / "output.json"
    env[OUTPUT_ENV] = str(output_path)
    if payload is not None:
        payload_path = run_dir / "payload.json"
        payload_path.write_text(json.dumps(payload))
        env[PAYLOAD_ENV] = str(payload_path)
    results_xml = run_dir / "results.xml"
    log_path = run_dir / "sim.log"

    runner = get_runner(design.simulator)
    # The runner exports this process's sys.path as the simulator's PYTHONPATH: that is how the test module's
    # folder becomes importable inside the simulator.
    sys.path.insert(0, str(test_dir))
    try:
        runner.test(
            test_module=test_module,
            hdl_toplevel=design.name,
            hdl_toplevel_lang="verilog",
            build_dir=design.build_dir,
            test_dir=run_dir,
            extra_env=env,
            testcase=testcase,
            seed=seed,
            results_xml=str(results_xml),
            timescale=TIMESCALE,
            log_file=log_path,
        )
    except (SystemExit, RuntimeError) as error:
        # Under pytest the runner exits on failing tests; either way results.xml (if any) tells what happened.
        if not results_xml.exists():
            raise CocotbFailure(
                f"{design.simulator} run of {test_module} on {design.name} ended without results ({error});"
                f" log {log_path}:\n{_log_tail(log_path)}"
            ) from None
    finally:
        sys.path.remove(str(test_dir))

    if not results_xml.exists():
        raise CocotbFailure(f"{design.simulator} run of {test_module} wrote no {results_xml}; log {log_path}")
    outcomes = _outcomes(results_xml)
    failed = [o for o in outcomes if not o.passed]
    if failed or not outcomes:
        details = "\n".join(f"  {o.name}: {o.message}" for o in failed) or "  (no tests ran)"
        raise CocotbFailure(
            f"{design.simulator} run of {test_module} on {design.name}: {len(failed)} of {len(outcomes)} tests"
            f" failed\n{details}\nlog {log_path} (tail):\n{_log_tail(log_path)}"
        )
    output = json.loads(output_path.read_text()) if output_path.exists() else None
    if keep_run_dir:
        return CocotbRun(run_dir, outcomes, output)
    shutil.rmtree(run_dir, ignore_errors=True)
    return CocotbRun(None, outcomes, output)


# ---------------------------------------------------------------------------------------------------------
# The cocotb side: called from inside a test module running in the simulator.


def load_payload() -> object:
    """The JSON payload that `run` was given; raises if `run` was called without one."""
    path = os.environ.get(PAYLOAD_ENV)
    if path is None:
        raise RuntimeError(f"{PAYLOAD_ENV} is not set: run() was called without a payload")
    return json.loads(Path(path).read_text())


def save_output(value: object) -> None:
    """Hand a JSON value back to `run` (it appears as CocotbRun.output)."""
    path = os.environ.get(OUTPUT_ENV)
    if path is None:
        raise RuntimeError(f"{OUTPUT_ENV} is not set: this module is not running under tessera.sim.cocotb_runner")
    Path(path).write_text(json.dumps(value))

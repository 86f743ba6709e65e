"""Makes the shared test helpers (`host_os_fakechip`, `host_os_reload_system`, `vboard_standin`: plain modules in
tests/, not test files) importable by name: pytest runs with --import-mode=importlib, which does not put the test
folder on sys.path. Appended, so no helper can shadow an installed module."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path:
    sys.path.append(TESTS)

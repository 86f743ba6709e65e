"""The .tsi runtime image: writing then reading gives back the same image, and a damaged, truncated or foreign
image is refused with a one-line ImageError before anything uses it."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tessera.os.image import (
    FORMAT_VERSION,
    HEADER,
    MAGIC,
    SECTION,
    ChipParams,
    ImageError,
    InitialMessage,
    NameEntry,
    NameKind,
    RuntimeImage,
    Section,
    StateField,
    TileImage,
    decode,
    describe,
    encode,
    read_image,
    write_image,
)
from tessera.os.manifest import SourceKind
from tessera.os.supervision import Strategy, SupervisorSpec

HOST_NODE = 127
NAME = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8).map(lambda s: "n" + s)


@st.composite
def trees(draw: st.DrawFn, services: list[str], supervisor_names: list[str]) -> SupervisorSpec:
    """A random tree over `services` (in this start order), using names from `supervisor_names`."""
    name = supervisor_names.pop()
    children: list[str | SupervisorSpec] = []
    remaining = list(services)
    while remaining:
        take = draw(st.integers(1, len(remaining)))
        group, remaining = remaining[:take], remaining[take:]
        if supervisor_names and draw(st.booleans()):
            children.append(draw(trees(group, supervisor_names)))
        else:
            children += group
    strategy = draw(st.sampled_from(list(Strategy)))
    return SupervisorSpec(name, strategy, draw(st.integers(0, 2**32 - 1)), draw(st.integers(1, 2**32 - 1)),
                          tuple(children))


@st.composite
def images(draw: st.DrawFn) -> RuntimeImage:
    tiles = draw(st.integers(1, 12))
    mem_bytes = draw(st.sampled_from([1024, 2048, 8192]))
    numbers = sorted(draw(st.sets(st.integers(0, tiles - 1), min_size=1)))
    all_names = draw(st.lists(NAME, min_size=len(numbers) + 3,
                              max_size=len(numbers) + 6, unique=True))
    services, supervisor_names = all_names[:len(numbers)], all_names[len(numbers):]
    tile_images = []
    for number, service in zip(numbers, services):
        memory = draw(st.binary(max_size=96))
        cuts = sorted(draw(st.sets(st.integers(0, len(memory)), max_size=6)))
        state_fields = tuple(StateField(f"f{index}", start, end - start)
                             for index, (start, end) in enumerate(zip(cuts[::2], cuts[1::2])) if end > start)
        tile_images.append(TileImage(
            tile=number, service=service, kind=draw(st.sampled_from(list(SourceKind))),
            source=draw(st.text(max_size=20)), memory=memory, code_bytes=draw(st.integers(0, len(memory))),
            stack_bytes=draw(st.integers(0, mem_bytes - len(memory))),
            permissions=draw(st.integers(0, 2 ** (tiles + 1) - 1)), supervisor=draw(st.integers(0, 0xFFFF)),
            persist=draw(st.booleans()), bare=draw(st.booleans()), state_fields=state_fields))
    names = [NameEntry(t.service, t.tile, NameKind.SERVICE) for t in tile_images]
    names.append(NameEntry("host", HOST_NODE, NameKind.HOST))
    if draw(st.booleans()):
        names.append(NameEntry("uart_io", draw(st.integers(0, 0xFFFF)), NameKind.IO))
    names = draw(st.permutations(names))
    start_order = draw(st.permutations(services))
    tree = draw(trees(list(start_order), supervisor_names))
    messages = []
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(tile_images))
        words = tuple(draw(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4)))
        messages.append(InitialMessage(target.service, target.tile, draw(st.integers(0, 0xFFFF)), words))
    return RuntimeImage(
        app=draw(st.text(max_size=12)),
        chip=ChipParams(tiles, mem_bytes, draw(st.integers(1, 64)), HOST_NODE),
        tiles=tuple(tile_images), names=tuple(names), tree=tree, messages=tuple(messages),
        manifest_name=draw(st.text(max_size=12)), manifest_text=draw(st.text(max_size=200)))


@settings(max_examples=100, deadline=None)
@given(images())
def test_write_then_read_round_trips_exactly(image: RuntimeImage) -> None:
    data = encode(image)
    assert decode(data) == image
    assert encode(decode(data)) == data


@settings(max_examples=50, deadline=None)
@given(images(), st.data())
def test_any_flipped_bit_is_refused(image: RuntimeImage, data: st.DataObject) -> None:
    raw = bytearray(encode(image))
    bit = data.draw(st.integers(0, 8 * len(raw) - 1))
    raw[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(ImageError):
        decode(bytes(raw), "app.tsi")


@settings(max_examples=50, deadline=None)
@given(images(), st.data())
def test_any_truncation_is_refused(image: RuntimeImage, data: st.DataObject) -> None:
    raw = encode(image)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(ImageError):
        decode(raw[:cut], "app.tsi")


def small_image() -> RuntimeImage:
    tree = SupervisorSpec("root", Strategy.ONE_FOR_ALL, 3, 5000, ("echo",))
    tile = TileImage(0, "echo", SourceKind.ASSEMBLY, "echo.s", bytes(range(16)), 8, 32, 0b101, HOST_NODE, True, False,
                     (StateField("count", 8, 4), StateField("table", 12, 4)))
    return RuntimeImage("demo", ChipParams(2, 1024, 4, HOST_NODE), (tile,),
                        (NameEntry("echo", 0, NameKind.SERVICE), NameEntry("host", HOST_NODE, NameKind.HOST)),
                        tree, (InitialMessage("echo", 0, 7, (1, 2)),), "app.toml", "# the manifest\n")


def reseal(body: bytes, version: int = FORMAT_VERSION) -> bytes:
    """A header with a correct CRC around `body` (to reach the checks behind the checksum)."""
    return HEADER.pack(MAGIC, version, 0, len(body), zlib.crc32(body)) + body


def one_line(error: pytest.ExceptionInfo[ImageError]) -> str:
    message = str(error.value)
    assert "\n" not in message and message.startswith("app.tsi: ")
    return message


def test_corrupt_byte_is_a_checksum_mismatch() -> None:
    raw = bytearray(encode(small_image()))
    raw[-3] ^= 0x40
    with pytest.raises(ImageError) as error:
        decode(bytes(raw), "app.tsi")
    assert "checksum mismatch" in one_line(error) and "corrupt" in one_line(error)


def test_truncated_image() -> None:
    raw = encode(small_image())
    with pytest.raises(ImageError) as error:
        decode(raw[:-5], "app.tsi")
    assert "truncated" in one_line(error)
    with pytest.raises(ImageError) as error:
        decode(raw[:HEADER.size - 2], "app.tsi")
    assert "shorter than the 20-byte header" in one_line(error)


def test_wrong_version() -> None:
    raw = encode(small_image())
    body = raw[HEADER.size:]
    with pytest.raises(ImageError) as error:
        decode(reseal(body, FORMAT_VERSION + 1), "app.tsi")
    assert f"format version {FORMAT_VERSION + 1}, but this tessera reads version {FORMAT_VERSION}" in one_line(error)


def test_not_an_image() -> None:
    with pytest.raises(ImageError) as error:
        decode(b"[chip]\ntiles = 4\n" * 4, "app.tsi")
    assert "not a Tessera runtime image" in one_line(error)


def test_bytes_after_the_end() -> None:
    with pytest.raises(ImageError) as error:
        decode(encode(small_image()) + b"\0", "app.tsi")
    assert "1 unexpected bytes after the image's end" in one_line(error)


def sections(image: RuntimeImage) -> list[tuple[int, bytes]]:
    body = encode(image)[HEADER.size:]
    out, position = [], 0
    while position < len(body):
        number, _, length = SECTION.unpack_from(body, position)
        out.append((number, body[position + SECTION.size:position + SECTION.size + length]))
        position += SECTION.size + length + (-length % 4)
    return out


def join(parts: list[tuple[int, bytes]]) -> bytes:
    return b"".join(SECTION.pack(n, 0, len(p)) + p + bytes(-len(p) % 4) for n, p in parts)


def test_missing_duplicate_and_unknown_sections() -> None:
    parts = sections(small_image())
    assert [n for n, _ in parts] == list(Section)
    with pytest.raises(ImageError) as error:
        decode(reseal(join([p for p in parts if p[0] != Section.TREE])), "app.tsi")
    assert "missing section(s): tree" in one_line(error)
    with pytest.raises(ImageError) as error:
        decode(reseal(join(parts + parts[:1])), "app.tsi")
    assert "chip section appears twice" in one_line(error)
    with pytest.raises(ImageError) as error:
        decode(reseal(join(parts + [(99, b"")])), "app.tsi")
    assert "unknown section id 99" in one_line(error)


def test_section_payload_of_the_wrong_size() -> None:
    parts = sections(small_image())
    chip = [(n, p + b"\0\0\0\0" if n == Section.CHIP else p) for n, p in parts]
    with pytest.raises(ImageError) as error:
        decode(reseal(join(chip)), "app.tsi")
    assert "chip section: 4 unexpected bytes" in one_line(error)
    short = [(n, p[:-1] if n == Section.NAMES else p) for n, p in parts]
    with pytest.raises(ImageError) as error:
        decode(reseal(join(short)), "app.tsi")
    assert "names section: truncated" in one_line(error)


def test_inconsistent_image_is_refused_even_with_a_good_checksum() -> None:
    image = small_image()
    parts = sections(image)
    names_payload = bytearray(dict(parts)[Section.NAMES])
    names_payload[2 + 4 + 4] = 1  # the address of "echo": u16 count, u32 length, "echo", then u16 address
    patched = [(n, bytes(names_payload) if n == Section.NAMES else p) for n, p in parts]
    with pytest.raises(ImageError) as error:
        decode(reseal(join(patched)), "app.tsi")
    assert "inconsistent image: the name table does not map service 'echo' to tile 0" in one_line(error)


def test_writer_refuses_an_inconsistent_image() -> None:
    image = small_image()
    too_big = TileImage(0, "echo", SourceKind.ASSEMBLY, "echo.s", bytes(1000), 8, 64, 0, HOST_NODE, False, False)
    with pytest.raises(ImageError, match="exceed 1024 bytes"):
        encode(RuntimeImage(image.app, image.chip, (too_big,), image.names, image.tree, image.messages,
                            image.manifest_name, image.manifest_text))


def test_file_round_trip_and_description(tmp_path: Path) -> None:
    path = tmp_path / "app.tsi"
    write_image(small_image(), path)
    assert read_image(path) == small_image()
    text = describe(read_image(path))
    assert "chip: 2 tiles x 1024 bytes, mailbox depth 4, host node 127" in text
    assert "root [one_for_all, at most 3 restarts in 5 s]" in text
    assert "  echo  -> echo, host  (DOWN to host)" in text
    assert "-> echo (tile 0) tag 7: 0x1 0x2" in text
    assert "  echo  count 4 B at 0x8, table 4 B at 0xc" in text


@pytest.mark.parametrize(("fields", "problem"), [
    ((StateField("a", 8, 8), StateField("b", 12, 4)), "state field 'b' (4 bytes at 0xc) overlaps another"),
    ((StateField("a", 12, 8),), "state field 'a' (8 bytes at 0xc) overlaps another, is empty or lies outside"),
    ((StateField("a", 4, 0),), "state field 'a' (0 bytes at 0x4)"),
    ((StateField("a", 0, 4), StateField("a", 4, 4)), "a state field is named twice"),
])
def test_bad_state_fields_are_refused(fields: tuple[StateField, ...], problem: str) -> None:
    image = small_image()
    tile = image.tiles[0]
    bad = TileImage(tile.tile, tile.service, tile.kind, tile.source, tile.memory, tile.code_bytes, tile.stack_bytes,
                    tile.permissions, tile.supervisor, tile.persist, tile.bare, fields)
    with pytest.raises(ImageError, match=re.escape(problem)):
        encode(RuntimeImage(image.app, image.chip, (bad,), image.names, image.tree, image.messages,
                            image.manifest_name, image.manifest_text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"nothing\.tsi: cannot read the image"):
        read_image(tmp_path / "nothing.tsi")


def test_header_layout_is_as_documented() -> None:
    raw = encode(small_image())
    magic, version, flags, length, crc = struct.unpack_from("<8sHHII", raw)
    assert (magic, version, flags) == (b"\x89TSI\r\n\x1a\n", 2, 0)
    assert length == len(raw) - 20 and crc == zlib.crc32(raw[20:])

"""The manifest parser: the example system parses as documented, and every kind of bad manifest is refused with a
message naming the file, the line, the key path and the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tessera.os.manifest import ManifestError, SourceKind, load_manifest, locate, parse_manifest
from tessera.os.placement import place, ring_hops
from tessera.os.supervision import Strategy, SupervisorSpec

DATA = Path(__file__).parent / "data" / "system"

CHIP = """
[chip]
tiles = 4
mem_bytes = 1024
mailbox_depth = 4
"""

SERVICES = """
[services.echo]
source = "echo.s"

[services.counter]
source = "counter.s"
"""

TREE = """
[supervisors.root]
strategy = "one_for_one"
children = ["echo", "counter"]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for source in DATA.iterdir():
        shutil.copy(source, tmp_path)
    return tmp_path


def parse(folder: Path, text: str):  # type: ignore[no-untyped-def]
    return parse_manifest(text, folder / "app.toml")


def refuse(folder: Path, text: str, path: str, *fragments: str) -> ManifestError:
    with pytest.raises(ManifestError) as caught:
        parse(folder, text)
    message = str(caught.value)
    assert message.startswith(str(folder / "app.toml")), message
    assert f" {path}: " in message, message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


def test_example_system_parses() -> None:
    manifest = load_manifest(DATA / "app.toml")
    assert manifest.name == "demo"
    assert (manifest.chip.tiles, manifest.chip.mem_bytes, manifest.chip.mailbox_depth) == (8, 1024, 4)
    assert list(manifest.services) == ["echo", "counter", "relay", "squares"]
    assert manifest.services["echo"].tile == 7
    assert manifest.services["counter"].persist and not manifest.services["relay"].persist
    assert manifest.services["counter"].stack_bytes == 32
    assert manifest.services["squares"].kind is SourceKind.PYTHON
    assert manifest.services["relay"].sends == ("counter",)
    workers = SupervisorSpec("workers", Strategy.REST_FOR_ONE, 2, 10_000, ("counter", "relay", "squares"))
    assert manifest.tree == SupervisorSpec("root", Strategy.ONE_FOR_ONE, 3, 5_000, ("echo", workers))
    assert manifest.start_order() == ("echo", "counter", "relay", "squares")
    assert [(m.to, m.tag, m.words) for m in manifest.messages] == [("counter", 1, (100,)), ("echo", 0, (1, 2, 3))]


def test_defaults_and_negative_words(folder: Path) -> None:
    manifest = parse(folder, CHIP + SERVICES + TREE + '[[messages]]\nto = "echo"\nwords = [-1]\n')
    assert manifest.name == "app"
    assert (manifest.tree.max_restarts, manifest.tree.period_ms) == (1, 5000)
    assert manifest.messages[0].words == (0xFFFFFFFF,) and manifest.messages[0].tag == 0


def test_fractional_period(folder: Path) -> None:
    manifest = parse(folder, CHIP + SERVICES + TREE.replace("children", "period = 0.25\nchildren"))
    assert manifest.tree.period_ms == 250


# -- refusals -------------------------------------------------------------------------------------------------


def test_toml_syntax_error_names_line_and_column(folder: Path) -> None:
    with pytest.raises(ManifestError, match=r"app\.toml:3:\d+: TOML syntax: "):
        parse(folder, "[chip]\ntiles = 4\nmem_bytes = = 3\n")


def test_name_clash_between_two_services(folder: Path) -> None:
    with pytest.raises(ManifestError, match=r"app\.toml:\d+:\d+: TOML syntax: .*twice"):
        parse(folder, CHIP + SERVICES + '\n[services.echo]\nsource = "relay.s"\n' + TREE)


def test_name_clash_between_service_and_supervisor(folder: Path) -> None:
    text = CHIP + SERVICES + TREE + '[supervisors.echo]\nstrategy = "one_for_one"\nchildren = ["counter"]\n'
    refuse(folder, text, "supervisors.echo", "name clash", "both a service and a supervisor")


def test_unknown_service_in_tree(folder: Path) -> None:
    error = refuse(folder, CHIP + SERVICES + TREE.replace('"counter"]', '"counter", "cuonter"]'),
                   "supervisors.root.children[2]", "unknown service or supervisor 'cuonter'")
    assert error.line == (CHIP + SERVICES + TREE).splitlines().index('children = ["echo", "counter"]') + 1


def test_cycle_in_tree(folder: Path) -> None:
    text = CHIP + SERVICES + TREE + """
[supervisors.a]
strategy = "one_for_all"
children = ["b"]

[supervisors.b]
strategy = "one_for_all"
children = ["a"]
"""
    refuse(folder, text, "supervisors.a.children", "cycle in the supervision tree", "a -> b -> a")


def test_cycle_below_a_supervisor_outside_it(folder: Path) -> None:
    """A supervisor under a cycle (but not on it) must not hang the check."""
    text = CHIP + SERVICES + TREE + """
[supervisors.under]
strategy = "one_for_all"
children = ["echo"]

[supervisors.a]
strategy = "one_for_all"
children = ["b", "under"]

[supervisors.b]
strategy = "one_for_all"
children = ["a"]
"""
    refuse(folder, text.replace('children = ["echo", "counter"]', 'children = ["counter"]'),
           "supervisors.a.children", "cycle", "a -> b -> a")


def test_service_in_two_supervisors(folder: Path) -> None:
    text = CHIP + SERVICES + TREE + '\n[supervisors.more]\nstrategy = "one_for_one"\nchildren = ["echo"]\n'
    text = text.replace('children = ["echo", "counter"]', 'children = ["echo", "counter", "more"]')
    refuse(folder, text, "supervisors.more.children[0]", "'echo' is already a child of supervisor 'root'")


def test_child_listed_twice(folder: Path) -> None:
    refuse(folder, CHIP + SERVICES + TREE.replace('"counter"]', '"counter", "echo"]'),
           "supervisors.root.children[2]", "already a child of the same supervisor")


def test_service_in_no_supervisor(folder: Path) -> None:
    refuse(folder, CHIP + SERVICES + TREE.replace('["echo", "counter"]', '["echo"]'),
           "services.counter", "in no supervisor")


def test_several_roots(folder: Path) -> None:
    text = CHIP + SERVICES + TREE.replace('["echo", "counter"]', '["echo"]')
    text += '[supervisors.other]\nstrategy = "one_for_one"\nchildren = ["counter"]\n'
    refuse(folder, text, "supervisors", "several roots (root, other)")


def test_more_services_than_tiles(folder: Path) -> None:
    text = CHIP.replace("tiles = 4", "tiles = 1") + SERVICES + TREE
    refuse(folder, text, "services", "2 services but the chip has only 1 tiles")


def test_send_to_undeclared_name(folder: Path) -> None:
    text = CHIP + SERVICES.replace('source = "echo.s"', 'source = "echo.s"\nsends = ["counter", "kv"]') + TREE
    refuse(folder, text, "services.echo.sends[1]", "sends to 'kv', which is not a declared service")


def test_send_to_host_is_allowed(folder: Path) -> None:
    text = CHIP + SERVICES.replace('source = "echo.s"', 'source = "echo.s"\nsends = ["host"]') + TREE
    assert parse(folder, text).services["echo"].sends == ("host",)


@pytest.mark.parametrize(("addition", "section", "path"), [
    ("colour = 1\n", "", "colour"),
    ("speed = 3\n", "[chip]\n", "chip.speed"),
    ("priority = 2\n", "[services.echo]\n", "services.echo.priority"),
    ("restart = \"permanent\"\n", "[supervisors.root]\n", "supervisors.root.restart"),
])
def test_unknown_keys(folder: Path, addition: str, section: str, path: str) -> None:
    text = CHIP + SERVICES + TREE
    text = addition + text if not section else text.replace(section, section + addition)
    error = refuse(folder, text, path, "unknown key")
    assert error.line == text.splitlines().index(addition.strip()) + 1


def test_unknown_key_in_message(folder: Path) -> None:
    refuse(folder, CHIP + SERVICES + TREE + '[[messages]]\nto = "echo"\nwords = [1]\nprio = 1\n',
           "messages[0].prio", "unknown key")


@pytest.mark.parametrize(("old", "new", "path", "problem"), [
    ("tiles = 4", 'tiles = "4"', "chip.tiles", "must be an integer, not a string"),
    ("tiles = 4", "tiles = 4.0", "chip.tiles", "must be an integer, not a float"),
    ("tiles = 4", "tiles = true", "chip.tiles", "must be an integer, not a boolean"),
    ("mem_bytes = 1024", "mem_bytes = 1536", "chip.mem_bytes", "not a power of two"),
    ("mem_bytes = 1024", "mem_bytes = 512", "chip.mem_bytes", "out of range"),
    ('source = "echo.s"', "source = 3", "services.echo.source", "must be a string"),
    ('source = "echo.s"', 'source = "echo.s"\npersist = 1', "services.echo.persist", "must be true or false"),
    ('source = "echo.s"', 'source = "echo.s"\nsends = "counter"', "services.echo.sends", "must be an array"),
    ('source = "echo.s"', 'source = "echo.s"\nsends = [1]', "services.echo.sends[0]", "must be a string"),
    ('strategy = "one_for_one"', 'strategy = "all_for_one"', "supervisors.root.strategy", "unknown strategy"),
    ('strategy = "one_for_one"', 'strategy = "one_for_one"\nmax_restarts = -1', "supervisors.root.max_restarts",
     "out of range"),
    ('strategy = "one_for_one"', 'strategy = "one_for_one"\nperiod = "5s"', "supervisors.root.period",
     "must be a number of seconds"),
    ('strategy = "one_for_one"', 'strategy = "one_for_one"\nperiod = 0', "supervisors.root.period", "out of range"),
    ('children = ["echo", "counter"]', 'children = "echo"', "supervisors.root.children", "must be an array"),
])
def test_wrong_types_and_values(folder: Path, old: str, new: str, path: str, problem: str) -> None:
    text = CHIP + SERVICES + TREE
    assert old in text
    refuse(folder, text.replace(old, new, 1), path, problem)


@pytest.mark.parametrize(("message", "path", "problem"), [
    ('to = "nobody"\nwords = [1]', "messages[0].to", "unknown service 'nobody'"),
    ('to = "echo"\nwords = []', "messages[0].words", "1..4 words, not 0"),
    ('to = "echo"\nwords = [1, 2, 3, 4, 5]', "messages[0].words", "1..4 words, not 5"),
    ('to = "echo"\nwords = [1, "2"]', "messages[0].words[1]", "must be an integer"),
    ('to = "echo"\nwords = [4294967296]', "messages[0].words[0]", "out of range"),
    ('to = "echo"\ntag = 65536\nwords = [1]', "messages[0].tag", "out of range"),
])
def test_bad_initial_messages(folder: Path, message: str, path: str, problem: str) -> None:
    refuse(folder, CHIP + SERVICES + TREE + f"[[messages]]\n{message}\n", path, problem)


def test_pin_to_missing_tile(folder: Path) -> None:
    text = CHIP + SERVICES.replace('source = "echo.s"', 'source = "echo.s"\ntile = 4') + TREE
    error = refuse(folder, text, "services.echo.tile", "pinned to tile 4, but the chip has tiles 0..3")
    assert error.line == text.splitlines().index("tile = 4") + 1


def test_two_services_pinned_to_one_tile(folder: Path) -> None:
    text = CHIP + SERVICES.replace('.s"', '.s"\ntile = 2') + TREE
    refuse(folder, text, "services.counter.tile", "tile 2 is already pinned to service echo")


@pytest.mark.parametrize(("old", "new", "path", "problem"), [
    ("[services.echo]", '[services."bad name"]', 'services.bad name', "not an identifier"),
    ("[services.echo]", "[services.host]", "services.host", "reserved for the host"),
    ('source = "echo.s"', 'source = "missing.s"', "services.echo.source", "'missing.s' not found"),
    ('source = "echo.s"', 'source = "echo.rs"', "services.echo.source", "unknown source type '.rs'"),
    ('source = "echo.s"', 'source = "squares.py"\nbare = true', "services.echo.bare",
     "always runs on the tile runtime"),
    ('source = "echo.s"', 'source = "squares.py"\nstack = 8', "services.echo.stack", "computes"),
])
def test_bad_services(folder: Path, old: str, new: str, path: str, problem: str) -> None:
    refuse(folder, (CHIP + SERVICES + TREE).replace(old, new, 1), path, problem)


@pytest.mark.parametrize(("suffix", "kind"), [(".c", SourceKind.C), (".elf", SourceKind.ELF), (".S", SourceKind.ASSEMBLY)])
def test_source_kinds_run_on_the_runtime_by_default(folder: Path, suffix: str, kind: SourceKind) -> None:
    (folder / f"svc{suffix}").write_bytes(b"")
    manifest = parse(folder, CHIP + SERVICES.replace('"echo.s"', f'"svc{suffix}"') + TREE)
    assert manifest.services["echo"].kind is kind and not manifest.services["echo"].bare


def test_missing_sections(folder: Path) -> None:
    with pytest.raises(ManifestError, match=r"app\.toml: missing key `chip`"):
        parse(folder, SERVICES + TREE)
    with pytest.raises(ManifestError, match=r"app\.toml: missing key `supervisors`"):
        parse(folder, CHIP + SERVICES)
    refuse(folder, CHIP + "[services]\n" + TREE, "services", "at least one service")
    refuse(folder, CHIP.replace("mailbox_depth = 4\n", "") + SERVICES + TREE, "chip", "missing key `mailbox_depth`")
    refuse(folder, CHIP + SERVICES + TREE.replace('children = ["echo", "counter"]', 'children = []'),
           "supervisors.root.children", "at least one child")


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"absent\.toml: cannot read the manifest"):
        load_manifest(tmp_path / "absent.toml")


def test_locate_finds_keys_in_tables_and_arrays_of_tables() -> None:
    text = 'a = 1\n[chip]\ntiles = 2\n\n[[messages]]\nto = "x"\n[[messages]]\nto = "y"\n'
    assert locate(text, ("a",)) == 1
    assert locate(text, ("chip", "tiles")) == 3
    assert locate(text, ("chip", "other")) == 2
    assert locate(text, ("messages", 1, "to")) == 8
    assert locate(text, ("nowhere", "x")) == 0


# -- placement ------------------------------------------------------------------------------------------------


def test_placement_keeps_pins_and_uses_distinct_tiles() -> None:
    manifest = load_manifest(DATA / "app.toml")
    placement = place(manifest)
    assert placement["echo"] == 7
    assert len(set(placement.values())) == len(placement)
    assert all(0 <= tile < manifest.chip.tiles for tile in placement.values())


def test_placement_puts_a_sender_just_before_its_receiver(folder: Path) -> None:
    """relay sends to counter: on the one-way ring the best tile for relay is the one just before counter's."""
    text = CHIP + SERVICES.replace('source = "counter.s"', 'source = "counter.s"\ntile = 2') + \
        '[services.relay]\nsource = "relay.s"\nsends = ["counter"]\n' + \
        TREE.replace('"counter"]', '"counter", "relay"]')
    placement = place(parse(folder, text))
    assert placement == {"echo": 0, "counter": 2, "relay": 1}
    assert ring_hops(1, 2, 4) == 1 and ring_hops(2, 1, 4) == 4

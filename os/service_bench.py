"""Code size and cost per handled message of the example services (os/examples), on the golden tile model.

`measure` runs a Python service on a 1 KiB tile and returns its sizes and the instructions it retires per handled
message (runtime receive and dispatch included); `measure_native` does the same for the C and assembly examples
of os/examples/native.toml, built as `tessera build` builds them. Multiply by the core's cycles per instruction
for cycles; `python -m tessera.os.service_bench` prints `name: value` lines for the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from tessera.os.build import build_image
from tessera.os.image import RuntimeImage
from tessera.os.manifest import load_manifest
from tessera.os.service_build import runtime
from tessera.os.service_tile import TileRun, TileService

#: Each example with the requests (sender, tag, words...) it is measured on.
EXAMPLE_REQUESTS: dict[str, list[tuple[int, ...]]] = {
    "echo": [(1, 0, 7), (1, 0, 1, 2), (1, 0, 1, 2, 3, 4)],
    "counter": [(1, 1, 5), (1, 1, 7), (1, 2, 0), (1, 3, 0)],
    "kv": [(1, 0, 1, 10, 100), (1, 0, 1, 11, 110), (1, 0, 2, 10), (1, 0, 3, 10), (1, 0, 2, 10), (1, 0, 4)],
    "primes": [(1, 0, 100), (1, 0, 400)],
    "mandelbrot": [(1, row, 32, 15, (row * (2 * (1 << 16) // 24) - (1 << 16)) & 0xFFFF_FFFF, 3 * (1 << 16) // 32)
                   for row in (0, 12, 23)],
}


#: The C and assembly examples (services of os/examples/native.toml) and the Python example each implements.
NATIVE_EXAMPLES = {"echo_c": "echo", "echo_s": "echo", "counter_c": "counter", "counter_s": "counter"}


@dataclass(frozen=True)
class Measurement:
    runtime_bytes: int
    code_bytes: int  # the service's header, fields and code
    data_bytes: int  # its state: the fields (Python), the state section (C) or labels (assembly)
    stack_bytes: int
    instructions_per_message: tuple[int, ...]


EXAMPLES_DIR = Path(str(resources.files("tessera.os").joinpath("examples")))


def example_source(name: str) -> str:
    return (EXAMPLES_DIR / f"{name}.py").read_text()


def measure(source: str, filename: str, requests: Sequence[tuple[int, ...]], mem_bytes: int = 1024) -> Measurement:
    tile = TileService(source, filename, mem_bytes=mem_bytes)
    tile.start()
    for sender, tag, *words in requests:
        tile.deliver(sender, tag, *words)
    if tile.fault is not None:
        raise RuntimeError(f"{filename} faulted while being measured: {tile.fault}")
    image = tile.image
    return Measurement(image.runtime_bytes, image.code_bytes, image.program.data_bytes, image.stack_bytes,
                       tuple(tile.instructions_per_message))


def native_image() -> RuntimeImage:
    """os/examples/native.toml built into a runtime image."""
    return build_image(load_manifest(EXAMPLES_DIR / "native.toml"))


def measure_native(image: RuntimeImage, service: str, requests: Sequence[tuple[int, ...]]) -> Measurement:
    tile_image = image.tile_of(service)
    tile = TileRun(tile_image.memory, tile_image.state_fields, mem_bytes=image.chip.mem_bytes)
    tile.start()
    for sender, tag, *words in requests:
        tile.deliver(sender, tag, *words)
    if tile.fault is not None:
        raise RuntimeError(f"{tile_image.source} faulted while being measured: {tile.fault}")
    return Measurement(len(runtime().image), tile_image.code_bytes, sum(f.size for f in tile_image.state_fields),
                       tile_image.stack_bytes, tuple(tile.instructions_per_message))


def _print(name: str, m: Measurement) -> None:
    print(f"service_{name}_code_bytes: {m.code_bytes}")
    print(f"service_{name}_insns_per_msg_max: {max(m.instructions_per_message)}")
    print(f"service_{name}_insns_per_msg_mean: {sum(m.instructions_per_message) / len(m.instructions_per_message):.0f}")


def main() -> None:
    for name, requests in EXAMPLE_REQUESTS.items():
        m = measure(example_source(name), f"{name}.py", requests)
        _print(name, m)
    image = native_image()
    for service, python in NATIVE_EXAMPLES.items():
        _print(service, measure_native(image, service, EXAMPLE_REQUESTS[python]))
    print(f"runtime_bytes: {m.runtime_bytes}")


if __name__ == "__main__":
    main()

"""Code size and cost per handled message of the example services (os/examples), on the golden tile model.

`measure` runs a service on a 1 KiB tile and returns its sizes and the instructions it retires per handled
message (runtime receive and dispatch included). Multiply by the core's cycles per instruction for cycles;
`python -m tessera.os.service_bench` prints `name: value` lines for the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources

from tessera.os.service_tile import TileService

#: Each example with the requests (sender, tag, words...) it is measured on.
EXAMPLE_REQUESTS: dict[str, list[tuple[int, ...]]] = {
    "echo": [(1, 0, 7), (1, 0, 1, 2), (1, 0, 1, 2, 3, 4)],
    "counter": [(1, 1, 5), (1, 1, 7), (1, 2, 0), (1, 3, 0)],
    "kv": [(1, 0, 1, 10, 100), (1, 0, 1, 11, 110), (1, 0, 2, 10), (1, 0, 3, 10), (1, 0, 2, 10), (1, 0, 4)],
    "primes": [(1, 0, 100), (1, 0, 400)],
    "mandelbrot": [(1, 0, 0), (1, 0, 12), (1, 0, 23)],
}


@dataclass(frozen=True)
class Measurement:
    runtime_bytes: int
    code_bytes: int  # the service's header, fields and code
    data_bytes: int
    stack_bytes: int
    instructions_per_message: tuple[int, ...]


def example_source(name: str) -> str:
    return resources.files("tessera.os").joinpath("examples", f"{name}.py").read_text()


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


def main() -> None:
    for name, requests in EXAMPLE_REQUESTS.items():
        m = measure(example_source(name), f"{name}.py", requests)
        print(f"service_{name}_code_bytes: {m.code_bytes}")
        print(f"service_{name}_insns_per_msg_max: {max(m.instructions_per_message)}")
        print(f"service_{name}_insns_per_msg_mean: {sum(m.instructions_per_message) / len(requests):.0f}")
    print(f"runtime_bytes: {m.runtime_bytes}")


if __name__ == "__main__":
    main()

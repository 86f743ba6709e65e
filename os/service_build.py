"""Builds a tile's memory image from a Python service: the runtime at 0, the compiled service after it.

    image = build_service(source, "counter.py", mem_bytes=1024, names={"kv": 2})
    image.words()          # the whole image from address 0, for the debug port / TileModel.load
    image.code_bytes       # the service's header, fields and code
    image.stack_bytes      # worst-case stack without recursion (recursion is checked at run time)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from tessera.firmware.asm import Program as AsmProgram
from tessera.firmware.asm import assemble
from tessera.os.codegen import Layout, generate
from tessera.os.image import StateField
from tessera.os.service_lang import CompileError, Program, check

#: A tile's runtime may use at most this much memory (a quarter of a 1 KiB tile).
RUNTIME_BUDGET = 256


@functools.cache
def runtime() -> AsmProgram:
    """firmware/runtime.s, assembled at 0."""
    source = resources.files("tessera.firmware").joinpath("runtime.s").read_text()
    program = assemble(source, "runtime.s")
    if len(program.image) > RUNTIME_BUDGET:
        raise AssertionError(f"the runtime is {len(program.image)} bytes, over its {RUNTIME_BUDGET}-byte budget")
    return program


@dataclass(frozen=True)
class ServiceImage:
    """A compiled service placed after the runtime."""

    program: Program
    assembly: str
    service: AsmProgram
    mem_bytes: int

    @property
    def runtime_bytes(self) -> int:
        return len(runtime().image)

    @property
    def code_bytes(self) -> int:
        """The service's own bytes: header, fields and code."""
        return len(self.service.image)

    @property
    def stack_bytes(self) -> int:
        return self.service.symbols["__stack_bytes"]

    def words(self) -> list[int]:
        """Runtime and service as 32-bit words from address 0."""
        return runtime().words() + self.service.words()

    def field_address(self, name: str) -> int:
        return self.service.symbols["service_data"] + self.program.fields[name].offset

    @property
    def state_fields(self) -> tuple[StateField, ...]:
        """Every field's address and size, in address order: the service's state as `snapshot()` sends it."""
        fields = sorted(self.program.fields.values(), key=lambda f: f.offset)
        return tuple(StateField(f.name, self.field_address(f.name), f.byte_size) for f in fields)


def build_service(source: str, filename: str = "<service>", mem_bytes: int = 1024,
                  names: Mapping[str, int] | None = None) -> ServiceImage:
    """Check, compile and assemble a service for a tile of mem_bytes; refuse one that does not fit."""
    program = check(source, filename)
    rt = runtime()
    layout = Layout(mem_bytes, rt.symbols["runtime_end"], rt.symbols)
    text = generate(program, layout, names or {})
    service = assemble(text, f"{filename}.s", base=layout.service_base)
    end = service.symbols["__image_end"]
    stack = service.symbols["__stack_bytes"]
    if end + stack > mem_bytes:
        raise CompileError(filename, None, f"service {program.service} does not fit a {mem_bytes}-byte tile: "
                                           f"{end} bytes of runtime, code and data plus {stack} bytes of stack")
    return ServiceImage(program, text, service, mem_bytes)

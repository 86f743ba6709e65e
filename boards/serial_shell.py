"""A timing shell: wraps a component whose ports outnumber a package's pins behind three serial pins.

Every input bit of the wrapped component is driven by one flip-flop of an input shift chain (fed from `sin`);
every output bit is captured (on `capture`) into an output shift chain that drains through `sout`. So every port
bit stays live (synthesis removes nothing) and every path into or out of the component starts or ends at a
flip-flop, which makes the place-and-route Fmax that of the component's own register-to-register paths. The
shell is for timing measurements only: its chains cost about two logic cells per port bit, so resource counts
must come from the component synthesised alone.
"""

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


class SerialShell(wiring.Component):
    """`sin` shifts into the inputs' chain; `capture` loads the outputs' chain, else it shifts out on `sout`."""

    sin: In(1)
    capture: In(1)
    sout: Out(1)

    def __init__(self, inner: wiring.Component) -> None:
        self._inner = inner
        super().__init__()

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.inner = inner = self._inner
        inputs: list[Signal] = []
        outputs: list[Signal] = []
        for _path, member, value in inner.signature.flatten(inner):
            (inputs if member.flow == In else outputs).append(value)
        input_bits = Cat(*inputs)
        output_bits = Cat(*outputs)

        if len(input_bits):
            input_chain = Signal(len(input_bits))
            m.d.sync += input_chain.eq(Cat(self.sin, input_chain[:-1]))
            m.d.comb += input_bits.eq(input_chain)

        output_chain = Signal(max(len(output_bits), 1))
        with m.If(self.capture):
            m.d.sync += output_chain.eq(output_bits)
        with m.Else():
            m.d.sync += output_chain.eq(output_chain >> 1)
        m.d.comb += self.sout.eq(output_chain[0])
        return m

"""The host link: UART pins, 8N1 receiver and transmitter, and the host bridge behind them."""

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tessera.hw.host_bridge import HostBridge
from tessera.hw.message_unit import MessagePortSignature
from tessera.hw.tile_bus import TileBusSignature
from tessera.hw.uart_rx import UartRx
from tessera.hw.uart_tx import UartTx
from tessera.os.protocol import ChipInfo


def uart_divisor(clock_hz: int, baud: int) -> int:
    """Clock cycles per bit, rounded; refuses a rate whose rounding error eats into the receiver's margin."""
    divisor = round(clock_hz / baud)
    if divisor < 4:
        raise ValueError(f"{baud} baud needs at least 4 clocks per bit; {clock_hz} Hz gives {clock_hz / baud:.2f}")
    error = abs(clock_hz / divisor - baud) / baud
    if error > 0.02:
        raise ValueError(f"{baud} baud at {clock_hz} Hz: divisor {divisor} is off by {error:.1%} (limit 2 %)")
    return divisor


class HostLink(wiring.Component):
    """`rx`/`tx` are the UART pins (idle high); `tiles` and `net` are HostBridge's. `baud` defaults to 115200."""

    def __init__(self, *, info: ChipInfo, baud: int = 115_200) -> None:
        self._divisor = uart_divisor(info.clock_hz, baud)
        self._bridge = HostBridge(info=info)
        super().__init__(
            {
                "rx": In(1, init=1),
                "tx": Out(1, init=1),
                "tiles": Out(TileBusSignature(info.tile_count, info.mem_log2 - 2)),
                "net": Out(MessagePortSignature),
            }
        )

    @property
    def divisor(self) -> int:
        return self._divisor

    def elaborate(self, platform) -> Module:
        m = Module()
        m.submodules.uart_rx = uart_rx = UartRx(self._divisor)
        m.submodules.uart_tx = uart_tx = UartTx(self._divisor)
        m.submodules.bridge = bridge = self._bridge
        wiring.connect(m, uart_rx.o, bridge.rx)
        wiring.connect(m, bridge.tx, uart_tx.i)
        wiring.connect(m, bridge.tiles, wiring.flipped(self.tiles))
        wiring.connect(m, bridge.net, wiring.flipped(self.net))
        m.d.comb += [
            uart_rx.rx.eq(self.rx),
            self.tx.eq(uart_tx.tx),
            bridge.rx_error.eq(uart_rx.framing_error | uart_rx.overrun),
        ]
        return m

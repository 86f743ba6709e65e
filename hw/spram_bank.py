"""Tile memory in the UP5K's single-port RAM: two SB_SPRAM256KA side by side, shared by a few tiles.

A UP5K has four SPRAMs of 16384 x 16 bits (32 KiB each, 128 KiB in all) beside its 30 block RAMs. Two side by side
make a bank of 16384 words of 32 bits (64 KiB) with one port, read data the cycle after the read, as a block RAM's.
A bank serves up to four tiles; each owns a fixed slice of it, and its address never leaves that slice: the slice
number is the top of the bank address, taken from the port, not from anything the tile drives. So a tile reaches
only its own words, as with a block RAM of its own, and the chip still has no shared memory.

Contention is rare: the bit-serial core touches memory once per instruction (twice for a load or store), and an
instruction takes 35 cycles or more. A port that loses waits one cycle per winner (`MemoryBusSignature` with
`waits=True`).

`tessera.sim.spram_bank_model.SpramBankModel` is the reference; tests/test_spram_bank.py compares both the
behavioural and the SB_SPRAM256KA form against it.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, Signal, Value
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In

from tessera.hw.core import MemoryBusSignature

__all__ = [
    "BANK_WORDS",
    "MAX_PORTS",
    "SpramBank",
    "bank_slot_bytes",
    "spram_bank_tiles",
    "spram_tile_bytes",
    "uses_spram_primitives",
]

#: Words in a bank: the depth of one SB_SPRAM256KA.
BANK_WORDS = 16384
#: Ports a bank serves at most (slices of 16 KiB).
MAX_PORTS = 4


def bank_slot_bytes(ports: int) -> int:
    """The bytes each of `ports` tiles gets in one bank: 64 KiB over the next power of two >= `ports`."""
    if not 1 <= ports <= MAX_PORTS:
        raise ValueError(f"a bank serves 1..{MAX_PORTS} tiles, not {ports}")
    return BANK_WORDS * 4 // (1 << (ports - 1).bit_length())


#: Banks a UP5K has: four SPRAMs, two per bank.
UP5K_BANKS = 2


def spram_bank_tiles(tiles: int) -> list[range]:
    """The tiles each bank of a chip with `tiles` tiles serves: as few per bank as the UP5K's two banks allow."""
    if not 1 <= tiles <= UP5K_BANKS * MAX_PORTS:
        raise ValueError(f"{tiles} tiles: the UP5K's SPRAM holds the memory of 1..{UP5K_BANKS * MAX_PORTS} tiles")
    per_bank = -(-tiles // UP5K_BANKS)
    return [range(first, min(first + per_bank, tiles)) for first in range(0, tiles, per_bank)]


def spram_tile_bytes(tiles: int) -> int:
    """The largest memory each of `tiles` tiles can have in the UP5K's SPRAM (all tiles get the same)."""
    return bank_slot_bytes(len(spram_bank_tiles(tiles)[0]))


def uses_spram_primitives(platform: object) -> bool:
    """Whether elaborating for `platform` instantiates SB_SPRAM256KA: an iCE40 UltraPlus. Any other platform with
    a device is refused; none (simulation, `amaranth.back.verilog`) gets the behavioural memory."""
    device = getattr(platform, "device", None)
    if device is None:
        return False
    if device.startswith("iCE40UP"):
        return True
    raise ValueError(f"{device} has no SPRAM: tile memory in SPRAM needs an iCE40 UltraPlus (UP5K)")


class SpramBank(wiring.Component):
    """Parameters: `ports` (1..4 tiles) and `addr_bits` (each port's word address width; at most the slice's).

    Ports: `ports[i]`, `In(MemoryBusSignature(addr_bits, waits=True))`. Port i's word w is bank word
    `i * slice + w`, where slice = BANK_WORDS / (the next power of two >= ports).

    Each cycle the bank takes one request (`re` or `we`): a request with `cannot_wait` first (the host's debug
    port: the host reaches one tile at a time, so two of them never meet), else the lowest-numbered port's.
    `ready` tells each port whether it was taken. All ports see the same `rdata`: it is the word of the read
    taken in the previous cycle, and means nothing after a cycle without a read (SB_SPRAM256KA keeps it across
    idle cycles but not across a write).
    """

    def __init__(self, *, ports: int, addr_bits: int) -> None:
        slot_words = bank_slot_bytes(ports) // 4
        if not 1 <= addr_bits <= slot_words.bit_length() - 1:
            raise ValueError(f"addr_bits={addr_bits}: a slice of {ports} ports' bank has {slot_words} words")
        self._ports = ports
        self._addr_bits = addr_bits
        self._slot_bits = (BANK_WORDS // slot_words - 1).bit_length()
        self._slot_words_bits = slot_words.bit_length() - 1
        super().__init__({"ports": In(MemoryBusSignature(addr_bits, waits=True)).array(ports)})
        self._words: memory.Memory | None = None

    @property
    def memory_array(self) -> memory.Memory:
        """The behavioural form's storage (simulation harnesses may inspect `memory_array.data`); port i's word w
        is entry i * slice + w. Made on first use: a bank elaborated with the SB_SPRAM256KA primitives has none."""
        if self._words is None:
            self._words = memory.Memory(shape=32, depth=BANK_WORDS, init=[])
        return self._words

    def elaborate(self, platform: object) -> Module:
        m = Module()
        requests = [port.re | port.we for port in self.ports]
        urgent = [request & port.cannot_wait for request, port in zip(requests, self.ports)]
        taken = [Signal(name=f"taken_{index}") for index in range(self._ports)]
        # One-hot: the urgent request if there is one, else the lowest port asking.
        for index, port in enumerate(self.ports):
            others_urgent = Cat(*urgent[:index], *urgent[index + 1 :]).any()
            earlier = Cat(*requests[:index]).any()
            m.d.comb += [
                taken[index].eq(urgent[index] | (requests[index] & ~others_urgent & ~earlier)),
                port.ready.eq(taken[index]),
            ]

        # The taken port's request, chosen by a chain of two-way multiplexers that ends at the last port instead of
        # at zeros: a word of the chain is one LUT per port after `taken`, and the SPRAMs sit at the die's corners,
        # so these paths are long already (`select` alone gates the access).
        def chosen(values: list[Value]) -> Value:
            value = values[-1]
            for index in reversed(range(self._ports - 1)):
                value = Mux(taken[index], values[index], value)
            return value

        def field(name: str) -> Value:
            return chosen([getattr(port, name) for port in self.ports])

        slot = chosen([Const(index, self._slot_bits) for index in range(self._ports)])
        address = Signal(14)
        write_data = Signal(32)
        write_mask = Signal(4)
        write = Signal()
        select = Signal()
        m.d.comb += [
            address.eq(Cat(field("addr"), Const(0, self._slot_words_bits - self._addr_bits), slot)),
            write_data.eq(field("wdata")),
            write_mask.eq(field("wmask")),
            write.eq(field("we")),
            select.eq(Cat(*requests).any()),  # someone is taken whenever anyone asks
        ]
        read_data = Signal(32)
        for port in self.ports:
            m.d.comb += port.rdata.eq(read_data)

        if uses_spram_primitives(platform):
            for half in range(2):
                byte_low, byte_high = write_mask[2 * half], write_mask[2 * half + 1]
                m.submodules[f"spram_{half}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=address,
                    i_DATAIN=write_data[16 * half : 16 * half + 16],
                    # one enable per nibble: two per byte
                    i_MASKWREN=Cat(byte_low, byte_low, byte_high, byte_high),
                    i_WREN=write,
                    i_CHIPSELECT=select,
                    i_CLOCK=ClockSignal("sync"),
                    i_STANDBY=0,
                    i_SLEEP=0,
                    i_POWEROFF=1,  # active low
                    o_DATAOUT=read_data[16 * half : 16 * half + 16],
                )
        else:
            m.submodules.memory = words = self.memory_array
            read = words.read_port(domain="sync")
            written = words.write_port(granularity=8)
            m.d.comb += [
                read.addr.eq(address),
                read.en.eq(select & ~write),
                written.addr.eq(address),
                written.data.eq(write_data),
                written.en.eq(write.replicate(4) & write_mask),
                read_data.eq(read.data),
            ]
        return m

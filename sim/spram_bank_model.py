"""Reference model of `tessera.hw.spram_bank.SpramBank`, one clock cycle per `cycle` call."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BankRequest", "BankTraffic", "SpramBankModel"]

BANK_WORDS = 16384


@dataclass(frozen=True)
class BankRequest:
    """One port's request in one cycle: a read (`write` False) or a write of the bytes set in `mask`."""

    addr: int
    write: bool = False
    data: int = 0
    mask: int = 0b1111
    cannot_wait: bool = False


class SpramBankModel:
    """`ports` tiles sharing 16384 words; port i owns the i-th slice (BANK_WORDS over the next power of two >= ports).

    Words never written read as 0 here; the hardware's are undefined until written (SPRAM is not initialised by the
    bitstream), and the tests never read them.
    """

    def __init__(self, ports: int) -> None:
        self.ports = ports
        self.slice_words = BANK_WORDS // (1 << (ports - 1).bit_length())
        self.words: dict[int, int] = {}
        #: The word of the read taken in the previous cycle, or None if that cycle took no read.
        self.read_data: int | None = None

    def cycle(self, requests: list[BankRequest | None]) -> list[bool]:
        """Present this cycle's requests (None: the port asks nothing); return which one was taken."""
        if len(requests) != self.ports:
            raise ValueError(f"{len(requests)} requests for {self.ports} ports")
        asking = [index for index, request in enumerate(requests) if request is not None]
        urgent = [index for index in asking if requests[index].cannot_wait]
        if len(urgent) > 1:
            raise ValueError(f"ports {urgent} cannot wait in the same cycle: the bank takes one request per cycle")
        winner = urgent[0] if urgent else asking[0] if asking else None
        self.read_data = None
        if winner is not None:
            request = requests[winner]
            if not 0 <= request.addr < self.slice_words:
                raise ValueError(f"port {winner}: word {request.addr} is outside its {self.slice_words}-word slice")
            where = winner * self.slice_words + request.addr
            if request.write:
                old = self.words.get(where, 0)
                keep = sum(0xFF << (8 * byte) for byte in range(4) if not request.mask >> byte & 1)
                self.words[where] = (old & keep) | (request.data & ~keep & 0xFFFF_FFFF)
            else:
                self.read_data = self.words.get(where, 0)
        return [index == winner for index in range(self.ports)]


class BankTraffic:
    """Random initiators for a bank, as the tiles behave: a port that was not taken asks the same again; one port at
    a time is the host's debug port (its requests cannot wait) for a stretch of cycles. A word is first written
    whole (the hardware's words are undefined until written), and only written words are read.

    Addresses come from a few words at each end of a port's `addr_bits`-wide range, so reads hit recent writes and
    each port's first and last words sit beside the neighbouring slices'.
    """

    def __init__(self, ports: int, addr_bits: int, seed: int) -> None:
        import random

        self._rng = random.Random(seed)
        self._ports = ports
        top = (1 << addr_bits) - 1
        self._addresses = sorted({*range(min(4, top + 1)), *range(max(0, top - 3), top + 1)})
        self._written: list[set[int]] = [set() for _ in range(ports)]
        self._debug_port: int | None = None
        self._requests: list[BankRequest | None] = [None] * ports

    def requests(self) -> list[BankRequest | None]:
        """This cycle's requests (the same object until `advance`)."""
        return self._requests

    def advance(self, taken: list[bool]) -> None:
        """Move to the next cycle, given which request the bank took in this one."""
        rng = self._rng
        if rng.random() < 0.05:
            self._debug_port = rng.choice([None, *range(self._ports)])
        for port in range(self._ports):
            request = self._requests[port]
            if request is not None and not taken[port]:
                if request.cannot_wait:
                    raise AssertionError(f"port {port}'s request cannot wait but was not taken")
                continue  # a waiting initiator holds its request
            if request is not None and request.write:
                self._written[port].add(request.addr)
            self._requests[port] = self._draw(port) if rng.random() < 0.6 else None

    def _draw(self, port: int) -> BankRequest:
        rng = self._rng
        urgent = port == self._debug_port
        readable = sorted(self._written[port])
        if readable and rng.random() < 0.5:
            return BankRequest(addr=rng.choice(readable), cannot_wait=urgent)
        addr = rng.choice(self._addresses)
        mask = rng.randrange(1, 16) if addr in self._written[port] else 0b1111
        return BankRequest(addr=addr, write=True, data=rng.getrandbits(32), mask=mask, cannot_wait=urgent)

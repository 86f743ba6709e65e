"""iCE40 PLL parameters (SB_PLL40_*, SIMPLE feedback) for a wanted output clock.

Contract: `pll_config(reference_hz, target_hz)` searches every legal DIVR/DIVF/DIVQ as icestorm's `icepll` does
(same limits, same order, the first best candidate wins) and returns the one whose output is closest to the
target. The limits come from the iCE40 sysCLOCK PLL design guide (TN1251):
- phase detector input F_ref / (DIVR + 1) in 10..133 MHz,
- VCO F_pfd * (DIVF + 1) in 533..1066 MHz (SIMPLE feedback: the VCO is divided by 2**DIVQ),
- output F_vco / 2**DIVQ in 16..275 MHz, DIVR 0..15, DIVF 0..127, DIVQ 1..6,
- FILTER_RANGE picked from F_pfd.
A reference or target outside what the PLL can reach raises PllError naming the limit.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

PFD_MIN_HZ, PFD_MAX_HZ = 10e6, 133e6
VCO_MIN_HZ, VCO_MAX_HZ = 533e6, 1066e6
OUT_MIN_HZ, OUT_MAX_HZ = 16e6, 275e6
REF_MIN_HZ, REF_MAX_HZ = 10e6, 133e6
DIVR_MAX, DIVF_MAX, DIVQ_MIN, DIVQ_MAX = 15, 127, 1, 6

#: (upper bound of F_pfd in Hz, FILTER_RANGE): the loop filter setting for each phase-detector band.
_FILTER_BANDS = ((17e6, 1), (26e6, 2), (44e6, 3), (66e6, 4), (101e6, 5))


class PllError(ValueError):
    """The wanted clock cannot be made from this reference."""


@dataclass(frozen=True)
class PllConfig:
    reference_hz: float
    divr: int
    divf: int
    divq: int

    @property
    def pfd_hz(self) -> float:
        return self.reference_hz / (self.divr + 1)

    @property
    def vco_hz(self) -> float:
        return self.pfd_hz * (self.divf + 1)

    @property
    def output_hz(self) -> float:
        return self.vco_hz / (1 << self.divq)

    @property
    def filter_range(self) -> int:
        for upper, setting in _FILTER_BANDS:
            if self.pfd_hz < upper:
                return setting
        return 6

    def instance_parameters(self) -> dict[str, object]:
        """Parameters for an SB_PLL40_* Instance (`p_` prefixed), SIMPLE feedback."""
        return {
            "p_FEEDBACK_PATH": "SIMPLE",
            "p_DIVR": self.divr,
            "p_DIVF": self.divf,
            "p_DIVQ": self.divq,
            "p_FILTER_RANGE": self.filter_range,
        }


def pll_config(reference_hz: float, target_hz: float) -> PllConfig:
    """The legal SIMPLE-feedback configuration whose output is closest to `target_hz` (icepll's choice)."""
    if not REF_MIN_HZ <= reference_hz <= REF_MAX_HZ:
        limits = f"{REF_MIN_HZ / 1e6:g}..{REF_MAX_HZ / 1e6:g} MHz"
        raise PllError(f"PLL reference {reference_hz / 1e6:g} MHz outside {limits}")
    if not OUT_MIN_HZ <= target_hz <= OUT_MAX_HZ:
        raise PllError(f"PLL output {target_hz / 1e6:g} MHz outside {OUT_MIN_HZ / 1e6:g}..{OUT_MAX_HZ / 1e6:g} MHz")
    best: PllConfig | None = None
    for divr in range(DIVR_MAX + 1):
        pfd = reference_hz / (divr + 1)
        if not PFD_MIN_HZ <= pfd <= PFD_MAX_HZ:
            continue
        for divf in range(DIVF_MAX + 1):
            vco = pfd * (divf + 1)
            if not VCO_MIN_HZ <= vco <= VCO_MAX_HZ:
                continue
            for divq in range(DIVQ_MIN, DIVQ_MAX + 1):
                output = vco / (1 << divq)
                if not OUT_MIN_HZ <= output <= OUT_MAX_HZ:
                    continue
                if best is None or abs(output - target_hz) < abs(best.output_hz - target_hz):
                    best = PllConfig(reference_hz, divr, divf, divq)
    if best is None:
        raise PllError(f"no PLL setting makes {target_hz / 1e6:g} MHz from {reference_hz / 1e6:g} MHz")
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="iCE40 PLL parameters, as icepll computes them")
    parser.add_argument("-i", "--input-mhz", type=float, default=12.0, help="reference clock (MHz)")
    parser.add_argument("-o", "--output-mhz", type=float, required=True, help="wanted clock (MHz)")
    args = parser.parse_args(argv)
    try:
        config = pll_config(args.input_mhz * 1e6, args.output_mhz * 1e6)
    except PllError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"F_PLLIN: {config.reference_hz / 1e6:8.3f} MHz")
    print(f"F_PLLOUT: {config.output_hz / 1e6:7.3f} MHz (requested {args.output_mhz:g} MHz)")
    print(f"F_PFD: {config.pfd_hz / 1e6:10.3f} MHz")
    print(f"F_VCO: {config.vco_hz / 1e6:10.3f} MHz")
    print(f"DIVR: {config.divr}  DIVF: {config.divf}  DIVQ: {config.divq}  FILTER_RANGE: {config.filter_range}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

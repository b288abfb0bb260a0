"""Per-organ tables of Pixel2Cancer and the measured size calibration (steps <-> diameter).

Density levels (spec "Pixel2Cancer"): organ HU quantized into 3 levels of ``interval`` HU from
``lower``; ``lower + 3 interval`` and above is vessel. Liver/pancreas 100/120/140 (vessel >= 160),
kidney 140/160/180 (vessel >= 200): contrast-enhanced values. When a scan's organ median is far
from them (non-contrast CT, phantoms), the table is shifted so the organ median sits in the
middle of level 1 (``DensityLevels.source = "organ_median"``) and that choice is recorded.

The reference's HU factors (vessels inside a tumor x 0.6875, level 3 x 0.875 for liver) are
ratios of raw HU on contrast CT: they take a 160 HU vessel to the middle of level 1 (110 HU).
Applied to raw HU after the table is shifted they break (non-contrast pancreas: vessel factor
-0.18). So the factors are the table's own ratios, always in (0, 1], and act on HU measured from
the shift (``offset_hu``, 0 for the contrast table): ``offset + (HU - offset) x factor`` still
takes a vessel to the middle of level 1 of the organ's own levels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class OrganTable:
    lower: float  # HU where density level 1 starts (the reference's organ_hu_lowerbound)
    interval: float  # HU width of a level
    max_steps: int  # reference: steps ~ U{5 .. max_steps - 1} when no size is asked
    death_min_steps: int  # necrosis only for tumors grown more than this many steps


ORGAN_TABLES = {
    "liver": OrganTable(100.0, 20.0, 150, 50),
    "pancreas": OrganTable(100.0, 20.0, 80, 30),
    "kidney": OrganTable(140.0, 20.0, 80, 30),
}
# intended invasion probability into density level 1 / 2 / 3 (the reference CUDA kernel truncates
# its random draw to int and therefore always invades; these are the values it meant)
INVASION_PROBS = (1.0, 0.3, 0.1)
# the fixed table is used when the organ median lies within this many HU of level 1's middle
FIT_TOLERANCE_HU = 30.0


@dataclass(frozen=True)
class DensityLevels:
    """HU thresholds used to quantize the organ: level k covers
    ``[lower + (k-1) interval, lower + k interval)`` (level 1 also everything below), vessel is
    ``>= lower + 3 interval``. ``source``: "fixed" (contrast table) or "organ_median"."""

    lower: float
    interval: float
    source: str
    organ_median_hu: float
    offset_hu: float = 0.0  # shift of the contrast table (lower - table lower); 0 = "fixed"

    @property
    def vessel_hu(self) -> float:
        return self.lower + 3 * self.interval

    @property
    def vessel_factor(self) -> float:
        """Vessels inside the tumor: ``offset + (HU - offset) x`` this (0.6875 liver, 0.75
        kidney), the contrast table's ratio whatever the shift, so always in (0, 1]."""
        base = self.lower - self.offset_hu
        return (base + self.interval / 2) / (base + 3 * self.interval)

    @property
    def level3_factor(self) -> float:
        """Level-3 tissue inside the tumor: ``offset + (HU - offset) x`` this (0.875 liver,
        0.9 kidney)."""
        base = self.lower - self.offset_hu
        return (base + 2 * self.interval) / (base + 3 * self.interval)

    def scale(self, hu: np.ndarray, factor: float) -> np.ndarray:
        """``offset + (hu - offset) x factor``: the reference's ratio, measured from the shift."""
        off = np.float32(self.offset_hu)
        return off + (hu - off) * np.float32(factor)

    def to_dict(self) -> dict:
        return {
            **asdict(self),
            "vessel_factor": self.vessel_factor,
            "level3_factor": self.level3_factor,
        }


def density_levels(organ_hu: np.ndarray, organ: str, mode: str = "auto") -> DensityLevels:
    """Pick the density levels for an organ from its voxels' HU (1D array, not empty).

    ``mode``: "fixed" (contrast table), "organ" (always shift to the organ median) or "auto"
    (fixed when the organ median is within ``FIT_TOLERANCE_HU`` of level 1's middle).
    """
    table = ORGAN_TABLES[organ]
    median = float(np.median(organ_hu))
    middle = table.lower + table.interval / 2
    if mode not in ("auto", "fixed", "organ"):
        raise ValueError(f"density mode must be auto, fixed or organ, got {mode!r}")
    if mode == "fixed" or (mode == "auto" and abs(median - middle) <= FIT_TOLERANCE_HU):
        return DensityLevels(table.lower, table.interval, "fixed", median)
    lower = median - table.interval / 2
    return DensityLevels(lower, table.interval, "organ_median", median, lower - table.lower)


# Size calibration, measured with ``python benchmarks/synthesis.py --calibrate`` (one seed cell,
# no satellites, homogeneous level-1 tissue, 1 mm grid, 3 generator seeds): growth steps ->
# equivalent diameter of the grown tumor in mm (median, min, max over the seeds). Growth in
# level-1 tissue (p = 1) is nearly deterministic: ~0.45 mm of diameter per step.
CALIBRATION = (
    # steps, median, min, max
    (5, 2.1, 2.1, 2.3),
    (10, 3.3, 3.1, 3.5),
    (20, 6.6, 6.4, 6.9),
    (30, 10.6, 10.4, 11.0),
    (40, 14.8, 14.5, 15.0),
    (60, 23.4, 23.1, 23.6),
    (80, 32.3, 31.9, 32.5),
    (100, 41.2, 40.8, 41.4),
    (120, 50.2, 49.8, 50.4),
    (150, 63.7, 63.4, 64.0),
    (200, 86.4, 86.1, 86.6),
)


def steps_for_diameter(diameter_mm: float) -> int:
    """Growth steps whose median diameter (calibration table, interpolated) is ``diameter_mm``."""
    steps = np.array([row[0] for row in CALIBRATION], dtype=float)
    diam = np.array([row[1] for row in CALIBRATION], dtype=float)
    if diameter_mm > diam[-1]:  # extrapolate linearly beyond the table
        slope = (steps[-1] - steps[-2]) / (diam[-1] - diam[-2])
        return int(round(steps[-1] + slope * (diameter_mm - diam[-1])))
    return max(1, int(round(np.interp(diameter_mm, diam, steps))))


def diameter_for_steps(steps: int) -> float:
    """Expected (median) diameter in mm after ``steps`` steps, from the calibration table."""
    return float(np.interp(steps, [r[0] for r in CALIBRATION], [r[1] for r in CALIBRATION]))

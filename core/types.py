"""Type aliases shared across packages (annotations only; nothing here is checked at run time)."""

from __future__ import annotations

import os
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

PathLike: TypeAlias = str | os.PathLike[str]
Spacing: TypeAlias = tuple[float, float, float]  # mm per voxel along x, y, z (RAS)
Shape3D: TypeAlias = tuple[int, int, int]
Seed: TypeAlias = int | None
FloatVolume: TypeAlias = npt.NDArray[np.float32]  # CT in HU, (x, y, z)
Mask: TypeAlias = npt.NDArray[np.bool_] | npt.NDArray[np.uint8]
JSONDict: TypeAlias = dict[str, object]

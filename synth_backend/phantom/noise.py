"""Random fields for the phantom: CT-like correlated noise and smooth tissue texture.

Arrays are (x, y, z) with ``spacing`` in mm; every function takes its ``numpy.random.Generator``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import fft, ndimage


def smooth_field(
    rng: np.random.Generator, shape: Sequence[int], spacing: Sequence[float], sigma_mm: float
) -> np.ndarray:
    """Gaussian-filtered white noise, rescaled to zero mean and unit std (float32).

    Used for tissue texture and for lobulated/irregular surfaces. ``sigma_mm`` is the
    correlation length; a constant field (tiny arrays) comes back as zeros.
    """
    white = rng.standard_normal(tuple(shape), dtype=np.float32)
    sigma = [max(sigma_mm / s, 0.0) for s in spacing]
    field = ndimage.gaussian_filter(white, sigma=sigma, mode="wrap")
    field -= field.mean()
    std = float(field.std())
    return field / std if std > 0 else np.zeros_like(field)


def ct_noise(
    rng: np.random.Generator,
    shape: Sequence[int],
    spacing: Sequence[float],
    *,
    std_hu: float,
    peak_mm: float = 4.0,
    z_mm: float = 1.0,
) -> np.ndarray:
    """Zero-mean noise with a filtered-back-projection-like spectrum, std ``std_hu`` (HU).

    In-plane noise power spectrum NPS(f) ~ f exp(-f^2 / (2 fp^2)) with fp = 1 / ``peak_mm``
    (the ramp filter times a Gaussian reconstruction kernel: low power at f -> 0, a peak near
    fp cycles/mm, roll-off above), applied slice by slice in the Fourier domain; across slices
    a Gaussian correlation of ``z_mm``. The result is rescaled so its std is exactly ``std_hu``.
    """
    nx, ny, _ = (int(s) for s in shape)
    sx, sy, sz = (float(s) for s in spacing)
    white = rng.standard_normal(tuple(shape), dtype=np.float32)
    fx = np.fft.fftfreq(nx, d=sx).astype(np.float32)[:, None]
    fy = np.fft.rfftfreq(ny, d=sy).astype(np.float32)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    fp = 1.0 / peak_mm
    gain = np.sqrt(f * np.exp(-(f**2) / (2 * fp**2)))[:, :, None]
    spec = fft.rfft2(white, axes=(0, 1), workers=1)
    spec *= gain
    out = fft.irfft2(spec, s=(nx, ny), axes=(0, 1), workers=1).astype(np.float32)
    if z_mm / sz > 0.05:
        out = ndimage.gaussian_filter1d(out, sigma=z_mm / sz, axis=2, mode="wrap")
    out -= out.mean()
    std = float(out.std())
    return out * np.float32(std_hu / std) if std > 0 else out

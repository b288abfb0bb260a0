"""Tumor texture of the modeling-based methods (Hu et al. 2023; reused by Pixel2Cancer).

Recipe from the reference code (``get_predefined_texture``): uniform noise -> Gaussian blur
(``sigma_a``) -> min-max scaled to ``[base, base + scale]`` (probabilities 0.04..0.27) ->
Bernoulli sample -> Gaussian blur (``sigma_b``) -> scaled so the mean of the values above 0.12 is
``u0 ~ U(0.5, 0.55)`` -> clipped to [0, 1].

Unlike the reference (ten 500^3 float64 tables built at start-up, ~3 GB, "looks stuck"), the
texture is generated lazily for one tumor box, in float32, with sigmas given in mm and converted
per axis with the box's spacing. Blurs run in the Fourier domain (periodic boundary; harmless for
white noise) so their cost does not grow with sigma.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft

SIGMA_A_MM = (3.0, 6.0, 9.0, 12.0, 15.0)
SIGMA_B_MM = (4.0, 7.0)


def gaussian_blur_fft(array: np.ndarray, sigma_vox: Sequence[float] | np.ndarray) -> np.ndarray:
    """Gaussian blur of a float32 (x, y, z) array with per-axis sigma in voxels, periodic edges.

    The transfer function of a Gaussian is ``exp(-2 pi^2 sigma^2 f^2)``; applying it in the
    Fourier domain costs O(N log N) whatever sigma is.
    """
    arr = np.asarray(array, dtype=np.float32)
    spectrum = scipy.fft.rfftn(arr)
    for axis, (n, sigma) in enumerate(zip(arr.shape, sigma_vox, strict=True)):
        last = axis == arr.ndim - 1
        freq = scipy.fft.rfftfreq(n) if last else scipy.fft.fftfreq(n)
        gain = np.exp(-2.0 * (np.pi * sigma * freq) ** 2).astype(np.float32)
        shape = [1] * arr.ndim
        shape[axis] = gain.size
        spectrum *= gain.reshape(shape)
    return scipy.fft.irfftn(spectrum, s=arr.shape).astype(np.float32, copy=False)


def tumor_texture(
    shape: Sequence[int],
    spacing: Sequence[float],
    *,
    sigma_a_mm: float,
    sigma_b_mm: float,
    seed: int,
) -> np.ndarray:
    """Texture field in [0, 1] (float32, (x, y, z) = ``shape``) for one tumor box.

    ``spacing`` (mm) converts the blur sigmas (mm) to voxels per axis. ``seed`` fixes every draw
    (noise fields and the scalars ``scale``, ``base``, ``u0``), so the same arguments always
    return the same array. Mean of the values above 0.12 is about U(0.5, 0.55).
    """
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    step = np.asarray(spacing, dtype=np.float64)
    noise = rng.random(shape, dtype=np.float32)
    smooth = gaussian_blur_fft(noise, sigma_a_mm / step)
    scale = rng.uniform(0.19, 0.21)
    base = rng.uniform(0.04, 0.06)
    lo, hi = float(smooth.min()), float(smooth.max())
    prob = scale * (smooth - lo) / max(hi - lo, 1e-12) + base
    bernoulli = (prob > rng.random(shape, dtype=np.float32)).astype(np.float32)
    blurred = gaussian_blur_fft(bernoulli, sigma_b_mm / step)
    u0 = rng.uniform(0.5, 0.55)
    above = blurred > 0.12
    # a tiny box can leave nothing above 0.12: fall back to the mean of the positive values
    ref = float(blurred[above].mean()) if above.any() else float(max(blurred.mean(), 1e-6))
    return np.clip(blurred * np.float32(u0 / ref), 0.0, 1.0).astype(np.float32, copy=False)

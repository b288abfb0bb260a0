"""Pixel2Cancer synthesizer: seeds -> cellular automaton (torch, 1 mm grid) -> HU mapping.

Each seed cluster grows in its own neighbourhood box: the box is cut from the scan, resampled to
``ca_spacing_mm`` isotropic (the reference works at 1 mm, so growth is isotropic in mm on any
scan), grown with :class:`~synth_backend.pixel2cancer.automaton.Automaton`, and the resulting
state is resampled back onto the scan's own grid, where the HU mapping changes only tumor voxels
(plus the in-plane blur rim). Cost follows the tumors, not the organ. Clusters whose boxes
overlap are combined before the HU mapping (maximum of their states), so a later cluster never
overwrites an earlier one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from core.vocabulary import ORGANS
from synth_backend.base import SynthesisResult, Synthesizer, resolve_device
from synth_backend.handcrafted.texture import tumor_texture
from synth_backend.pixel2cancer.automaton import TUMOR_MAX, VESSEL, WALL, Automaton
from synth_backend.pixel2cancer.mapping import map_to_ct
from synth_backend.pixel2cancer.params import Pixel2CancerParams, organ_box, sample_params
from synth_backend.pixel2cancer.tables import DensityLevels, density_levels, diameter_for_steps

OPTIONS = {
    "size",
    "diameter_mm",
    "steps",
    "n_tumors",
    "invasion_probs",
    "density",
    "necrosis",
    "ca_spacing_mm",
}
# A 26-connected automaton tumor can come back from the 1 mm grid with a detached voxel or two
# (a one-cell protrusion resampled with trilinear weights). Components smaller than 2 x 2 x 2
# automaton cells are such artefacts: no real focus is that small after >= 5 growth steps.
SPECK_CELLS = 8


def _cluster_box(points, reach_mm: float, spacing, shape) -> tuple[slice, ...]:
    pts = np.asarray(points)
    half = np.ceil(reach_mm / np.asarray(spacing)).astype(int)
    lo = np.maximum(pts.min(axis=0) - half, 0)
    hi = np.minimum(pts.max(axis=0) + half + 1, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def _resize(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Trilinear resize of an (x, y, z) float tensor; corners stay on corners."""
    return F.interpolate(
        x[None, None], size=tuple(int(s) for s in size), mode="trilinear", align_corners=True
    )[0, 0]


def grow_cluster(
    ct_box: np.ndarray,
    organ_box_: np.ndarray,
    points_vox: np.ndarray,
    spacing,
    params: Pixel2CancerParams,
    levels: DensityLevels,
    death_extra: Sequence[int],
    seed: int,
    device: str,
    steps: int,
):
    """Run the automaton for one cluster box; return (state, dead, mask) on the native box.

    ``points_vox`` are seed voxels relative to the box. ``state`` is float32 0..10 (dead = 10),
    ``dead`` float32 0..1, ``mask`` bool; all zero outside the organ.
    """
    dev = torch.device(device)
    n = np.array(ct_box.shape)
    iso = np.maximum(2, np.round((n - 1) * np.asarray(spacing) / params.ca_spacing_mm) + 1)
    iso = iso.astype(int)
    ct_t = torch.from_numpy(np.ascontiguousarray(ct_box, dtype=np.float32)).to(dev)
    org_t = torch.from_numpy(organ_box_.astype(np.float32)).to(dev)
    ct_i, org_i = _resize(ct_t, iso), _resize(org_t, iso) >= 0.5
    edges = torch.tensor(
        [levels.lower + levels.interval, levels.lower + 2 * levels.interval], device=dev
    )
    level = torch.bucketize(ct_i, edges, right=True)
    vessel = ct_i >= levels.vessel_hu
    state = torch.zeros(tuple(iso), dtype=torch.int32, device=dev)
    state[vessel] = VESSEL
    state[~org_i] = WALL
    level[vessel | ~org_i] = 3
    scale = (iso - 1) / np.maximum(n - 1, 1)
    seeds = torch.from_numpy(np.round(points_vox * scale).astype(np.int64)).to(dev)
    tissue = state[seeds[:, 0], seeds[:, 1], seeds[:, 2]] == 0
    state[seeds[tissue, 0], seeds[tissue, 1], seeds[tissue, 2]] = TUMOR_MAX // 2
    gen = torch.Generator(device=dev).manual_seed(int(seed))
    ca = Automaton(state, level, params.invasion_probs, gen)
    # Each step is a few small gathers/scatters: on CPU, intra-op threads only add sync cost
    # (measured 5-20x slower on a loaded 2-core machine), so run single-threaded and restore.
    threads = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(1)
    try:
        for _ in range(steps):
            ca.step()
        if params.death:
            extra = torch.tensor(list(death_extra), dtype=torch.int64)
            ca.kill(seeds, extra, max(1, int(steps / 10 - 2)))
            for _ in range(steps // 7 + 1):
                ca.spread_death()
    finally:
        torch.set_num_threads(threads)
    s = ca.unpadded_state()
    is_dead = s == -1
    tumor = (s >= 1) & (s <= TUMOR_MAX)
    value = torch.where(is_dead, TUMOR_MAX, torch.where(tumor, s, 0)).float()
    native = tuple(int(v) for v in n)
    state_n = _resize(value, native).cpu().numpy() * organ_box_
    dead_n = _resize(is_dead.float(), native).cpu().numpy() * organ_box_
    mask_n = (_resize((tumor | is_dead).float(), native).cpu().numpy() >= 0.5) & organ_box_
    mask_n, keep = _drop_specks(mask_n, spacing, params.ca_spacing_mm)
    if keep is not None:
        state_n, dead_n = state_n * keep, dead_n * keep
    return state_n.astype(np.float32), dead_n.astype(np.float32), mask_n


def _drop_specks(mask: np.ndarray, spacing, cell_mm: float):
    """Remove resampling specks (components < ``SPECK_CELLS`` automaton cells); returns the
    mask and, when something was removed, the zone (bool) whose state may stay."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if n <= 1:
        return mask, None
    sizes = np.bincount(labels.ravel())[1:] * float(np.prod(spacing))
    small = np.flatnonzero(sizes < SPECK_CELLS * cell_mm**3) + 1
    if small.size == 0:
        return mask, None
    kept = mask & ~np.isin(labels, small)
    reach = max(1, int(np.ceil(cell_mm / min(float(v) for v in spacing))))
    return kept, ndimage.binary_dilation(kept, np.ones((3, 3, 3), dtype=bool), iterations=reach)


def _merge_boxes(boxes: list[tuple[slice, ...]]) -> list[tuple[tuple[slice, ...], list[int]]]:
    """Group boxes that overlap (transitively, until the groups' bounding boxes are disjoint);
    returns (bounding box, member indices) per group, in order of first member."""
    groups = [([b.start for b in box], [b.stop for b in box], [i]) for i, box in enumerate(boxes)]
    merged = True
    while merged:
        merged = False
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                lo_i, hi_i, mi = groups[i]
                lo_j, hi_j, mj = groups[j]
                if all(a < d and c < b for a, b, c, d in zip(lo_i, hi_i, lo_j, hi_j, strict=True)):
                    groups[i] = (
                        [min(a, c) for a, c in zip(lo_i, lo_j, strict=True)],
                        [max(b, d) for b, d in zip(hi_i, hi_j, strict=True)],
                        sorted(mi + mj),
                    )
                    del groups[j]
                    merged = True
                    break
            if merged:
                break
    return [
        (tuple(slice(a, b) for a, b in zip(lo, hi, strict=True)), members)
        for lo, hi, members in groups
    ]


def apply(
    ct: np.ndarray,
    organ_mask: np.ndarray,
    spacing: Sequence[float],
    params: Pixel2CancerParams,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, dict]:
    """Grow and insert the tumors of ``params``; deterministic for a device.

    ``ct`` float32 HU and boolean ``organ_mask``, (x, y, z). Returns ``(ct', tumor_mask, info)``
    with uint8 mask and ``info`` (density levels used, boxes, timings).
    """
    spacing = tuple(float(s) for s in spacing)
    organ = organ_mask.astype(bool, copy=False)
    ob = organ_box(organ)
    levels = density_levels(ct[ob][organ[ob]][::7], params.organ, params.density_mode)
    out = np.asarray(ct, dtype=np.float32).copy()
    tumor = np.zeros(ct.shape, dtype=np.uint8)
    radius = diameter_for_steps(params.steps) / 2.0
    reach = 1.15 * radius + 4.0 * params.ca_spacing_mm + 2.0
    extras = list(params.death_extra)
    boxes, grown, t_ca = [], [], 0.0
    for i, cluster in enumerate(params.clusters):
        pts = np.array(cluster.points)
        box = _cluster_box(pts, reach, spacing, ct.shape)
        boxes.append(box)
        extra, extras = extras[: len(pts)], extras[len(pts) :]
        t0 = time.perf_counter()
        grown.append(
            grow_cluster(
                ct[box],
                organ[box],
                pts - [b.start for b in box],
                spacing,
                params,
                levels,
                extra,
                params.ca_seed + i,
                device,
                cluster.steps,
            )
        )
        t_ca += time.perf_counter() - t0
    # overlapping clusters: one state map (maximum of the states), one HU mapping
    for group_box, members in _merge_boxes(boxes):
        shape = tuple(b.stop - b.start for b in group_box)
        state = np.zeros(shape, dtype=np.float32)
        dead = np.zeros(shape, dtype=np.float32)
        mask = np.zeros(shape, dtype=bool)
        for k in members:
            local = tuple(
                slice(b.start - g.start, b.stop - g.start)
                for b, g in zip(boxes[k], group_box, strict=True)
            )
            s_k, d_k, m_k = grown[k]
            np.maximum(state[local], s_k, out=state[local])
            np.maximum(dead[local], d_k, out=dead[local])
            mask[local] |= m_k
        if not mask.any():
            continue
        texture = tumor_texture(
            shape,
            spacing,
            sigma_a_mm=params.sigma_a_mm,
            sigma_b_mm=params.sigma_b_mm,
            seed=params.texture_seed + members[0],
        )
        mapped = map_to_ct(
            ct[group_box],
            organ[group_box],
            state,
            dead,
            texture,
            levels,
            params.organ,
            spacing=spacing,
            hu_drop=params.hu_drop,
            necrosis_drop=params.necrosis_drop,
            fat_factor=params.fat_factor,
        )
        out[group_box] = mapped
        tumor[group_box] |= mask.astype(np.uint8)
    info = {
        "density_levels": levels.to_dict(),
        "boxes": [[[b.start, b.stop] for b in box] for box in boxes],
        "automaton_seconds": round(t_ca, 3),
        "sampling_steps": params.steps,
    }
    return out, tumor, info


class Pixel2CancerSynthesizer(Synthesizer):
    """Registry name ``pixel2cancer``. Options: ``size`` (tiny|small|medium|large),
    ``diameter_mm``, ``steps`` (reference control), ``n_tumors`` (seed clusters; default 1
    with a size or diameter, else the reference's U{1..9}), ``invasion_probs`` (3 values,
    default 1.0/0.3/0.1), ``density`` (auto|fixed|organ), ``necrosis`` (bool),
    ``ca_spacing_mm`` (automaton grid, default 1 mm). Runs on CUDA when ``device`` is auto and
    a GPU is visible, else on CPU, with the same code."""

    name = "pixel2cancer"

    def sample_params(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        organ: str,
        spacing: tuple[float, float, float],
        seed: int,
        **options: Any,
    ) -> Pixel2CancerParams:
        if organ not in ORGANS:
            raise ValueError(f"organ must be one of {ORGANS}, got {organ!r}")
        unknown = set(options) - OPTIONS
        if unknown:
            raise ValueError(
                f"unknown pixel2cancer options {sorted(unknown)}; known: {sorted(OPTIONS)}"
            )
        return sample_params(
            np.random.default_rng(seed), ct, organ_mask, spacing, organ=organ, **options
        )

    def params_from_dict(self, data: dict[str, Any]) -> Pixel2CancerParams:
        return Pixel2CancerParams.from_dict(data)

    def apply(
        self,
        ct: np.ndarray,
        organ_mask: np.ndarray,
        *,
        spacing: tuple[float, float, float],
        params: Pixel2CancerParams,
        device: str = "auto",
    ) -> SynthesisResult:
        """Grow ``params``' seeds: the same volume bit for bit on the same device."""
        start = time.perf_counter()
        device = resolve_device(device)
        out, tumor, info = apply(
            np.asarray(ct, dtype=np.float32), organ_mask, spacing, params, device
        )
        info.update(device=device, seconds=round(time.perf_counter() - start, 3))
        return SynthesisResult(out, tumor, params.to_dict(), info)


__all__ = ["Pixel2CancerSynthesizer", "apply", "density_levels"]

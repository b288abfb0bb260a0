"""Resampling, bounding boxes, crop/paste."""

from __future__ import annotations

import numpy as np
import pytest

from synth_backend.geometry import (
    bounding_box,
    box_affine,
    crop,
    equivalent_diameter_mm,
    paste,
    resample_to_spacing,
)


def test_resample_keeps_world_positions_exact():
    affine = np.diag([2.0, 2.0, 4.0, 1.0])
    affine[:3, 3] = [10, -5, 3]
    # a linear ramp along z is reproduced exactly by linear interpolation
    ramp = np.broadcast_to(np.arange(5, dtype=np.float32) * 4.0, (3, 3, 5)).copy()
    out, new_affine = resample_to_spacing(ramp, affine, (2, 2, 4), (1, 1, 1), is_mask=False)
    assert out.shape == (5, 5, 17)
    np.testing.assert_allclose(new_affine[:3, 3], affine[:3, 3])
    np.testing.assert_allclose(np.diag(new_affine)[:3], [1, 1, 1])
    # voxel k along z sits at k mm from the origin, and the ramp value equals that distance
    np.testing.assert_allclose(out[0, 0, :], np.arange(17, dtype=np.float32))


def test_mask_resampling_is_nearest_and_keeps_labels():
    mask = np.zeros((4, 4, 4), np.uint8)
    mask[1:3, 1:3, 1:3] = 2
    out, _ = resample_to_spacing(mask, np.eye(4), (1, 1, 1), (0.5, 0.5, 0.5), is_mask=True)
    assert out.dtype == np.uint8 and set(np.unique(out)) == {0, 2}


def test_bounding_box_margin_is_clipped_and_crop_paste_round_trip():
    mask = np.zeros((10, 10, 10), bool)
    mask[1:4, 5:7, 8:10] = True
    box = bounding_box(mask, margin=2)
    assert box == (slice(0, 6), slice(3, 9), slice(6, 10))
    full = np.arange(1000).reshape(10, 10, 10)
    patch = crop(full, box)
    np.testing.assert_array_equal(paste(np.zeros_like(full), patch, box)[box], full[box])
    np.testing.assert_allclose(box_affine(np.eye(4), box)[:3, 3], [0, 3, 6])
    with pytest.raises(ValueError, match="empty"):
        bounding_box(np.zeros((3, 3, 3)))


def test_equivalent_diameter_of_a_cube():
    # 1000 voxels of 1 mm^3: sphere of 1000 mm^3 has diameter (6000/pi)^(1/3)
    assert equivalent_diameter_mm(1000, (1, 1, 1)) == pytest.approx((6000 / np.pi) ** (1 / 3))

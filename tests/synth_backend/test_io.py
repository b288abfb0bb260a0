"""Volume IO: orientation round trips, dtypes, validation messages."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from synth_backend.errors import VolumeError
from synth_backend.io import check_same_grid, load_volume, save_like, save_volume


def _lps_affine(spacing=(0.8, 0.8, 2.0)):
    # LPS storage (as DICOM converters write): x and y flipped relative to RAS
    return np.diag([-spacing[0], -spacing[1], spacing[2], 1.0])


def test_load_reorients_to_ras_and_save_like_restores_the_file_grid(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 400, size=(6, 5, 4)).astype(np.int16)
    path = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(data, _lps_affine()), path)

    vol = load_volume(path, "ct")
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    assert vol.spacing == pytest.approx((0.8, 0.8, 2.0))
    # voxel (0,0,0) of the file is the last voxel along x and y in RAS order
    assert vol.array[-1, -1, 0] == data[0, 0, 0]
    # same physical position: file voxel (0,0,0) and RAS voxel (5,4,0) map to the same mm
    np.testing.assert_allclose(vol.affine @ [5, 4, 0, 1], _lps_affine() @ [0, 0, 0, 1])

    out = save_like(vol, vol.array + 1, tmp_path / "out.nii.gz")
    written = nib.load(out)
    np.testing.assert_allclose(written.affine, _lps_affine())
    assert written.get_data_dtype() == np.int16
    np.testing.assert_array_equal(np.asarray(written.dataobj), data + 1)


def test_ct_is_rounded_to_int16_and_masks_are_uint8(tmp_path):
    affine = np.eye(4)
    save_volume(np.full((3, 3, 3), 40.6, np.float32), affine, tmp_path / "c.nii.gz", "ct")
    save_volume(np.ones((3, 3, 3), bool), affine, tmp_path / "m.nii.gz", "mask")
    ct = nib.load(tmp_path / "c.nii.gz")
    assert ct.get_data_dtype() == np.int16 and np.asarray(ct.dataobj).max() == 41
    assert nib.load(tmp_path / "m.nii.gz").get_data_dtype() == np.uint8


@pytest.mark.parametrize(
    "values, kind, message",
    [
        (np.full((4, 4, 4), np.nan, np.float32), "ct", "NaN/inf"),
        (np.linspace(0, 1, 64, dtype=np.float32).reshape(4, 4, 4), "ct", "does not look like CT"),
        (np.linspace(-5000, 100, 64, dtype=np.float32).reshape(4, 4, 4), "ct", "outside"),
        (np.full((4, 4, 4), 0.5, np.float32), "mask", "integers"),
        (np.full((4, 4, 4), -1, np.int16), "mask", "[0, 255]"),
        (np.full((4, 4, 4), 300, np.int16), "mask", "[0, 255]"),
    ],
)
def test_invalid_values_name_the_file_and_the_fix(tmp_path, values, kind, message):
    path = tmp_path / "bad.nii.gz"
    nib.save(nib.Nifti1Image(values, np.eye(4)), path)
    with pytest.raises(VolumeError) as err:
        load_volume(path, kind)
    text = str(err.value)
    assert str(path) in text and message in text and ";" in text


def test_grid_mismatch_is_reported(tmp_path):
    a = tmp_path / "a.nii.gz"
    b = tmp_path / "b.nii.gz"
    nib.save(
        nib.Nifti1Image(np.arange(64, dtype=np.int16).reshape(4, 4, 4) * 20 - 1000, np.eye(4)), a
    )
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.diag([2, 1, 1, 1.0])), b)
    with pytest.raises(VolumeError, match="affine differs"):
        check_same_grid(load_volume(a, "ct"), load_volume(b, "mask"))


def test_nrrd_is_read_in_ras(shared_data):
    vol = load_volume(shared_data / "dcmqi_ct3slice" / "ct.nrrd", "ct")
    assert vol.shape == (512, 512, 3)
    assert vol.spacing == pytest.approx((0.811, 0.811, 1.0), abs=1e-3)
    assert nib.aff2axcodes(vol.affine) == ("R", "A", "S")
    assert vol.array.min() == -3024

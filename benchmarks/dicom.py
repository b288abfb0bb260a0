"""DICOM benchmark: seconds to write a real CT as a series, to convert it back (scan headers,
decode, NIfTI + provenance), and to convert a RLE-compressed copy.

Run: ``.venv/bin/python benchmarks/dicom.py [--ct ../shared/data/hcc_tace_seg_048/ct.nii.gz]``.
Files go to a temporary folder that is removed afterwards. Prints one table row per step and
checks the round trip is voxel-exact.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom

from synth_backend.dicom.convert import prepare
from synth_backend.dicom.write import write_volume_as_series
from synth_backend.io import load_volume

DEFAULT_CT = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "hcc_tace_seg_048" / "ct.nii.gz"
)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ct", type=Path, default=DEFAULT_CT)
    args = parser.parse_args(argv)
    img = nib.load(args.ct)
    ct = np.asarray(img.dataobj).astype(np.int16)
    print(
        f"{args.ct.name}: {ct.shape}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"{'step':<34} {'seconds':>8} {'MB/s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files, t_write = _timed(lambda: write_volume_as_series(ct, img.affine, tmp / "plain"))
        mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"{'write series (pydicom)':<34} {t_write:>8.2f} {mb / t_write:>7.0f}")
        prepared, t_conv = _timed(lambda: prepare(tmp / "plain", tmp / "out1"))
        print(f"{'import: scan + convert to NIfTI':<34} {t_conv:>8.2f} {mb / t_conv:>7.0f}")
        back = load_volume(prepared.records[0].ct_path)
        assert np.array_equal(back.array, load_volume(args.ct).array), "round trip differs"
        for f in files:
            ds = pydicom.dcmread(f)
            ds.compress(pydicom.uid.RLELossless)
            ds.save_as(f)
        _, t_rle = _timed(lambda: prepare(tmp / "plain", tmp / "out2"))
        print(f"{'import RLE Lossless copy':<34} {t_rle:>8.2f} {mb / t_rle:>7.0f}")
    print(f"{len(files)} slices, {mb:.0f} MB uncompressed; round trip voxel-exact")


if __name__ == "__main__":
    main()

"""Semi-automatic liver and tumor masks for TCIA HCC-TACE-Seg HCC_048 (portal-venous CT).

The staged series ships no mask. This script makes both masks reproducibly from the CT alone,
with seeds picked by eye on axial slices (documented below); the result was checked by eye on
overlays (`--overlay DIR` writes them). Output: uint8 NIfTI on the CT's grid, committed under
``weights/data/hcc048/`` with CC BY 4.0 attribution (see its README).

Procedure
1. Smooth the CT with a curvature-flow filter (SimpleITK, 5 iterations) to suppress noise.
2. Liver: ``ConfidenceConnected``-free plain ``ConnectedThreshold`` region growing in
   [LIVER_LO, LIVER_HI] HU from the seeds in ``LIVER_SEEDS`` (parenchyma at ~100 HU, away from
   vessels), then a 3D opening (radius 4 voxels in-plane) to cut thin bridges to neighbours,
   the largest connected component, a closing (radius 3) and slice-wise hole filling, which
   puts the enhanced vessels and the lesion back inside the organ.
   The grown region is limited to the box ``LIVER_ROI`` minus ``PANCREAS_BOX`` (both picked
   by eye); per slice, pieces under ``MIN_PIECE_SHARE`` of the largest are dropped.
3. Tumor: inside the liver, ``ConnectedThreshold`` from ``TUMOR_SEEDS`` in
   [TUMOR_LO, TUMOR_HI] HU on the smoothed CT, restricted to the sphere of ``TUMOR_MAX_MM``
   around the first seed (a leak guard), then opening/closing radius 1 and hole filling.

Run: ``python scripts/hcc048_masks.py CT OUT_DIR [--overlay DIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

# seeds are (x, y, z) voxel indices of the stored NIfTI (512 x 512 x 89, LPS)
LIVER_SEEDS = [(130, 230, 52), (100, 220, 60), (120, 200, 44), (150, 170, 66)]
LIVER_LO, LIVER_HI = 80.0, 150.0
# region of interest picked by eye (inclusive x, y, z bounds): keeps the spleen (x > 350),
# the heart (z > 77) and the pelvis out of the grown region
LIVER_ROI = ((25, 350), (90, 340), (18, 74))
# pancreas and duodenum enhance like the liver and touch it at the porta: excluded by a box
# picked by eye (medial and posterior to the right lobe, below the caudate)
PANCREAS_BOX = ((140, 350), (185, 340), (18, 42))
# per slice, 2D pieces smaller than this share of the slice's largest piece are dropped
# (abdominal-wall muscle and diaphragm touching the liver surface)
MIN_PIECE_SHARE = 0.15
# No tumor seed: on the staged portal-venous series no lesion could be told apart from the
# parenchyma by eye with confidence (candidates at (190, 147, 44) and (219, 198, 52) are the
# falciform fissure and the porta; a ~10 HU darker caudate region at (215, 250, 57) is too
# subtle to delineate). The collection's own SEG objects were not available. Add a seed here
# (x, y, z) when one is confirmed, e.g. against the TCIA segmentation.
TUMOR_SEEDS: list[tuple[int, int, int]] = []
TUMOR_LO, TUMOR_HI = -20.0, 80.0
TUMOR_MAX_MM = 40.0


def _itk(array: np.ndarray, ref: sitk.Image) -> sitk.Image:
    img = sitk.GetImageFromArray(np.ascontiguousarray(array.transpose(2, 1, 0)))
    img.CopyInformation(ref)
    return img


def _np(img: sitk.Image) -> np.ndarray:
    return sitk.GetArrayFromImage(img).transpose(2, 1, 0)


def liver_mask(ct: sitk.Image) -> np.ndarray:
    smooth = sitk.CurvatureFlow(
        sitk.Cast(ct, sitk.sitkFloat32), timeStep=0.125, numberOfIterations=5
    )
    grown = sitk.ConnectedThreshold(smooth, seedList=LIVER_SEEDS, lower=LIVER_LO, upper=LIVER_HI)
    roi = np.zeros(_np(grown).shape, dtype=np.uint8)
    roi[tuple(slice(a, b + 1) for a, b in LIVER_ROI)] = 1
    roi[tuple(slice(a, b + 1) for a, b in PANCREAS_BOX)] = 0
    grown = sitk.And(grown, sitk.Cast(_itk(roi, ct), grown.GetPixelID()))
    grown = sitk.BinaryMorphologicalOpening(grown, [4, 4, 1])
    cc = sitk.RelabelComponent(sitk.ConnectedComponent(grown), sortByObjectSize=True)
    liver = _np(cc) == 1
    for z in range(liver.shape[2]):
        lab, n = ndimage.label(liver[:, :, z])
        if n > 1:
            area = np.bincount(lab.ravel())[1:]
            liver[:, :, z] = np.isin(lab, 1 + np.nonzero(area >= MIN_PIECE_SHARE * area.max())[0])
    liver = ndimage.binary_closing(liver, structure=np.ones((7, 7, 3)), iterations=1)
    for z in range(liver.shape[2]):
        liver[:, :, z] = ndimage.binary_fill_holes(liver[:, :, z])
    return liver, _np(smooth)


def tumor_mask(smooth: np.ndarray, liver: np.ndarray, ct: sitk.Image) -> np.ndarray:
    if not TUMOR_SEEDS:
        return np.zeros_like(liver)
    grown = (
        _np(
            sitk.ConnectedThreshold(
                _itk(smooth.astype(np.float32), ct),
                seedList=TUMOR_SEEDS,
                lower=TUMOR_LO,
                upper=TUMOR_HI,
            )
        )
        > 0
    )
    sp = np.asarray(ct.GetSpacing())
    grid = np.indices(liver.shape).astype(np.float32)
    d2 = sum(((grid[i] - TUMOR_SEEDS[0][i]) * sp[i]) ** 2 for i in range(3))
    tumor = grown & liver & (d2 <= TUMOR_MAX_MM**2)
    tumor = ndimage.binary_opening(tumor, iterations=1)
    tumor = ndimage.binary_closing(tumor, iterations=1)
    lab, n = ndimage.label(tumor)
    if n:
        keep = lab[tuple(TUMOR_SEEDS[0])] or (np.bincount(lab.ravel())[1:].argmax() + 1)
        tumor = lab == keep
    for z in range(tumor.shape[2]):
        tumor[:, :, z] = ndimage.binary_fill_holes(tumor[:, :, z])
    return tumor & liver


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("ct")
    ap.add_argument("out")
    ap.add_argument("--overlay", help="write axial overlay PNGs here")
    args = ap.parse_args()
    import nibabel as nib

    nii = nib.load(args.ct)
    ct = sitk.ReadImage(args.ct)
    liver, smooth = liver_mask(ct)
    tumor = tumor_mask(smooth, liver, ct)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, m in (("liver", liver), ("liver_tumor", tumor)):
        if not m.any():
            continue  # no tumor seed: no tumor file (an empty mask would read as "no tumor")
        img = nib.Nifti1Image(m.astype(np.uint8), nii.affine)
        img.set_data_dtype(np.uint8)
        nib.save(img, out / f"{name}.nii.gz")
    vox = float(np.prod(ct.GetSpacing())) / 1000.0
    print(f"liver {liver.sum() * vox:.0f} mL, tumor {tumor.sum() * vox:.1f} mL")
    if args.overlay:
        _overlays(np.asarray(nii.dataobj, dtype=np.float32), liver, tumor, Path(args.overlay))


def _overlays(ct, liver, tumor, folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    zs = np.nonzero(liver.any(axis=(0, 1)))[0]
    for z in np.linspace(zs.min(), zs.max(), 12).astype(int):
        g = np.clip((ct[:, :, z].T + 100) / 350 * 255, 0, 255).astype(np.uint8)
        rgb = np.stack([g, g, g], -1)
        edge_l = liver[:, :, z].T & ~ndimage.binary_erosion(liver[:, :, z].T)
        edge_t = tumor[:, :, z].T & ~ndimage.binary_erosion(tumor[:, :, z].T)
        rgb[edge_l] = (0, 255, 0)
        rgb[edge_t] = (255, 0, 0)
        Image.fromarray(rgb).save(folder / f"z{z:03d}.png")


if __name__ == "__main__":
    main()

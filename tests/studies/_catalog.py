"""Tiny on-disk catalogs for the study tests: small NIfTI phantoms + catalog rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from db.models import (
    Dataset,
    DatasetFormat,
    Origin,
    SyntheticProvenance,
    TumorKind,
    Volume,
    VolumeOrgan,
)
from synth_backend.geometry import equivalent_diameter_mm
from synth_backend.io import save_volume, sha256_file

SHAPE = (40, 40, 24)


# Multi-focal layout (mm from the volume centre): one main lesion and three tiny ones in the
# other corners of the organ, so the box of *all* lesions is centred where there is none.
MULTIFOCAL_OFFSETS_MM = ((9.0, 9.0, 0.0), (-9.0, -9.0, 0.0), (-9.0, 9.0, 0.0), (9.0, -9.0, 0.0))


def make_case(
    rng: np.random.Generator,
    *,
    spacing=(1.0, 1.0, 2.0),
    noise=20.0,
    tumor_hu=25.0,
    radius_mm=5.0,
    shape=SHAPE,
    multifocal=False,
):
    """(ct HU float32, label map uint8 with 1 = organ, 2 = tumor) on an (x, y, z) grid.
    ``multifocal``: a lesion of ``radius_mm`` plus three of 1.5 mm far from it."""
    grid = np.stack(
        np.meshgrid(
            *[np.arange(n) * s for n, s in zip(shape, spacing, strict=True)], indexing="ij"
        ),
        axis=-1,
    )
    centre = (np.asarray(shape) - 1) * np.asarray(spacing) / 2
    r_body = np.linalg.norm((grid - centre)[..., :2], axis=-1)
    ct = np.where(r_body < 0.45 * shape[0] * spacing[0], -80.0, -1000.0)
    organ = (((grid - centre) / np.array([14.0, 14.0, 16.0])) ** 2).sum(-1) <= 1
    ct[organ] = 60.0
    tc = centre + rng.uniform(-4, 4, size=3) * np.array([1, 1, 0.5])
    tumor = (np.linalg.norm(grid - tc, axis=-1) <= radius_mm) & organ
    if multifocal:
        tumor = np.zeros(shape, dtype=bool)
        for k, off in enumerate(MULTIFOCAL_OFFSETS_MM):
            r = radius_mm if k == 0 else 1.5
            tumor |= np.linalg.norm(grid - centre - np.asarray(off), axis=-1) <= r
        tumor &= organ
    ct[tumor] = tumor_hu
    ct = ct + rng.normal(0, noise, size=shape)
    labels = organ.astype(np.uint8)
    labels[tumor] = 2
    return ct.astype(np.float32), labels


def build_catalog(
    session,
    root: Path,
    *,
    organ="liver",
    n_real=4,
    n_synthetic=4,
    methods=("handcrafted",),
    seed=0,
    real_kind=TumorKind.PHANTOM_LESION,
    real_opts=None,
    synthetic_opts=None,
    radii_mm=None,
):
    """Write ``n_real`` real-arm and ``n_synthetic`` synthetic volumes (per method round
    robin) under ``root`` and register them; returns the created Volume rows. ``radii_mm``
    gives each case's tumor radius (real cases first); the catalog diameter is the largest
    lesion's equivalent diameter, as ``catalog.volumes`` records it."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    real_ds = session.query(Dataset).filter_by(name="phantoms").one_or_none() or Dataset(
        name="phantoms", format=DatasetFormat.PHANTOM, root_path=str(root)
    )
    syn_ds = session.query(Dataset).filter_by(name="synthetic").one_or_none() or Dataset(
        name="synthetic", format=DatasetFormat.SYNTHETIC, root_path=str(root)
    )
    session.add_all([real_ds, syn_ds])
    session.flush()
    made = []
    for i in range(n_real + n_synthetic):
        synthetic = i >= n_real
        opts = dict((synthetic_opts if synthetic else real_opts) or {})
        spacing = opts.pop("spacing", (1.0, 1.0, 2.0))
        if radii_mm is not None:
            opts["radius_mm"] = radii_mm[i]
        ct, labels = make_case(rng, spacing=spacing, **opts)
        affine = np.diag([*spacing, 1.0])
        affine[:3, 3] = rng.uniform(-200, 200, size=3)  # scanner origins differ per case
        tag = f"{organ}_{'syn' if synthetic else 'real'}_{i:03d}"
        ct_path = save_volume(ct, affine, root / f"{tag}_ct.nii.gz", "ct")
        if synthetic:
            organ_path = save_volume(labels > 0, affine, root / f"{tag}_organ.nii.gz", "mask")
            tumor_path = save_volume(labels == 2, affine, root / f"{tag}_tumor.nii.gz", "mask")
        else:
            organ_path = tumor_path = save_volume(
                labels, affine, root / f"{tag}_labels.nii.gz", "mask"
            )
        vol = Volume(
            dataset_id=(syn_ds if synthetic else real_ds).id,
            case_id=tag,
            origin=Origin.SYNTHETIC if synthetic else Origin.PHANTOM,
            ct_path=str(ct_path),
            ct_sha256=sha256_file(ct_path),
            shape=list(SHAPE),
            spacing=list(spacing),
            affine=affine.tolist(),
            axcodes="RAS",
        )
        n_tumor = int((labels == 2).sum())
        lesion_labels, _ = ndimage.label(labels == 2)
        largest = int(np.bincount(lesion_labels.ravel())[1:].max())
        vol.organs.append(
            VolumeOrgan(
                organ=organ,
                mask_paths=[str(organ_path)],
                mask_sha256=sha256_file(organ_path),
                mask_labels=None if synthetic else [1, 2],
                organ_voxels=int((labels > 0).sum()),
                tumor_kind=TumorKind.SYNTHETIC if synthetic else real_kind,
                tumor_paths=[str(tumor_path)],
                tumor_sha256=sha256_file(tumor_path),
                tumor_labels=None if synthetic else [2],
                tumor_voxels=n_tumor,
                tumor_diameter_mm=round(equivalent_diameter_mm(largest, spacing), 2),
            )
        )
        session.add(vol)
        session.flush()
        if synthetic:
            session.add(
                SyntheticProvenance(
                    volume_id=vol.id,
                    method=methods[(i - n_real) % len(methods)],
                    organ=organ,
                    params={},
                    seed=i,
                    device="cpu",
                    code_version="test",
                )
            )
        made.append(vol)
    session.flush()
    return made


def spec_dict(**overrides):
    """A small valid turing spec (crop 24 x 24 x 16 mm at 1.5 mm). Its readers are test
    scripts that answer at once, so the minimum time on case is off (``reading``); tests of
    that rule pass ``reading={}`` for the default."""
    spec = {
        "name": "t1",
        "design": "turing",
        "organs": ["liver"],
        "cases_per_organ": {"real": 3, "synthetic": 3},
        "presentation": {
            "spacing_mm": 1.5,
            "crop": {"size": [24, 24, 18], "unit": "mm"},
            "window": "liver",
        },
        "readers": ["ann", "bob"],
        "seed": 3,
        "reading": {"min_seconds_on_case": 0},
    }
    spec.update(overrides)
    return spec


def write_manifest(root: Path, n: int = 2, seed: int = 0) -> Path:
    """``n`` tiny liver cases (CT + label map, 1 = organ, 2 = tumor) and the ``data import
    --format manifest`` CSV listing them; returns the CSV path."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    lines = ["case,ct,organ,organ_mask,organ_label,tumor_mask,tumor_label"]
    for i in range(n):
        ct, labels = make_case(rng)
        affine = np.diag([1.0, 1.0, 2.0, 1.0])
        save_volume(ct, affine, root / f"case{i}_ct.nii.gz", "ct")
        save_volume(labels, affine, root / f"case{i}_labels.nii.gz", "mask")
        lines.append(
            f"case{i},case{i}_ct.nii.gz,liver,case{i}_labels.nii.gz,1;2,case{i}_labels.nii.gz,2"
        )
    csv_path = root / "manifest.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    return csv_path

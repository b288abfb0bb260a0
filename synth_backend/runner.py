"""File-level synthesis shared by every method: load, validate, synthesize, write, record.

``synthesize_file`` is what the CLI (`turingct synth`), the batch runner and the app call. It
writes ``DIR/ct.nii.gz`` (int16 HU on the input's own grid), ``DIR/tumor_mask.nii.gz`` (uint8)
and, last, ``DIR/provenance.json`` (the "done" marker; see :mod:`synth_backend.provenance`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.errors import InputError
from synth_backend.errors import (
    EmptyOrganError,
    NoTumorError,
    SynthesisInputError,
)

log = logging.getLogger(__name__)


def organ_from_mask(mask: np.ndarray, organ_label: int | None, path: Path) -> np.ndarray:
    """Boolean organ from a mask file's array: binary masks (one nonzero value, e.g. IRCAD's
    0/255) mean any nonzero voxel; a label map (several nonzero values) needs ``organ_label``."""
    if organ_label is not None:
        organ = mask == organ_label
        if not organ.any():
            present = np.unique(mask[mask > 0])[:20].tolist()
            raise EmptyOrganError(
                path,
                f"label {organ_label} does not occur in the mask (labels present: {present})",
                "pass the organ's label with --organ-label",
            )
        return organ
    values = np.unique(mask[::4, ::4, ::4][mask[::4, ::4, ::4] > 0])
    if values.size > 1 or (values.size == 1 and not np.all((mask == 0) | (mask == values[0]))):
        values = np.unique(mask[mask > 0])
    if values.size > 1:
        raise SynthesisInputError(
            path,
            f"is a label map with labels {values[:20].tolist()}",
            "pass --organ-label N to say which label is the organ",
        )
    organ = mask > 0
    if not organ.any():
        raise EmptyOrganError(
            path, "organ mask is empty", "pass the mask of a case that contains the organ"
        )
    return organ


def synthesize_file(
    method: str,
    ct_path: str | Path,
    organ_mask_path: str | Path,
    *,
    organ: str,
    organ_label: int | None = None,
    out_dir: str | Path,
    seed: int,
    device: str = "auto",
    checkpoint: str | Path | None = None,
    vessel_mask: str | Path | None = None,
    replay_params: dict[str, Any] | None = None,
    replay_of: dict[str, Any] | None = None,
    **options: Any,
) -> Path:
    """Synthesize tumor(s) with ``method`` into one CT file; return the output folder.

    ``options`` go to the method (e.g. ``size``, ``diameter_mm``). ``vessel_mask``: a mask
    file of the dataset's vessels on the CT's grid (hand-crafted ``vtt`` profile).
    ``replay_params``: a provenance ``params`` dict to re-apply instead of drawing new ones
    (:func:`replay_file`; ``seed`` and ``options`` are then only recorded, and ``replay_of``
    goes into the manifest). Raises
    :class:`synth_backend.errors.VolumeError` for unreadable or mismatched files and
    :class:`SynthesisInputError` subclasses for unusable organ masks, each naming the case.
    """
    from core.settings import code_version
    from core.vocabulary import ORGANS
    from synth_backend.base import resolve_device
    from synth_backend.io import check_same_grid, load_volume, save_like, sha256_file
    from synth_backend.provenance import (
        PROVENANCE_NAME,
        environment,
        tumor_statistics,
        write_provenance,
    )
    from synth_backend.registry import get_synthesizer

    if organ not in ORGANS:
        raise SynthesisInputError(
            ct_path,
            f"organ must be one of {list(ORGANS)}, got {organ!r}",
            "pass --organ liver|pancreas|kidney",
        )
    ct_path, organ_mask_path, out_dir = Path(ct_path), Path(organ_mask_path), Path(out_dir)
    started = time.perf_counter()
    ct = load_volume(ct_path, "ct")
    mask = load_volume(organ_mask_path, "mask")
    check_same_grid(ct, mask)
    organ_mask = organ_from_mask(mask.array, organ_label, organ_mask_path)
    extra: dict[str, Any] = {}
    if vessel_mask is not None:
        vessel_mask = Path(vessel_mask)
        vessels = load_volume(vessel_mask, "mask")
        check_same_grid(ct, vessels)
        extra["vessel_mask"] = vessels.array > 0
    device = resolve_device(device)
    kwargs = {"checkpoint": checkpoint} if checkpoint is not None else {}
    synth = get_synthesizer(method, **kwargs)
    options = {k: v for k, v in options.items() if v is not None}
    try:
        if replay_params is not None:
            result = synth.replay(
                ct.array, organ_mask, spacing=ct.spacing, params=replay_params, device=device
            )
        else:
            result = synth.synthesize(
                ct.array,
                organ_mask,
                organ=organ,
                spacing=ct.spacing,
                seed=int(seed),
                device=device,
                **options,
                **extra,
            )
    except SynthesisInputError as exc:
        raise exc.for_case(ct_path) from exc
    if not result.tumor_mask.any():
        raise NoTumorError(
            ct_path,
            f"{method} generated no tumor voxel in the organ (seed {int(seed)})",
            "try another --seed or a larger size, or a longer-trained --checkpoint",
        )
    checkpoint_used = getattr(synth, "checkpoint", None)  # learned methods; after the call
    out_dir.mkdir(parents=True, exist_ok=True)
    save_like(ct, result.ct, out_dir / "ct.nii.gz", "ct")
    save_like(ct, result.tumor_mask.astype(np.uint8), out_dir / "tumor_mask.nii.gz", "mask")
    # statistics on what was written: int16-rounded HU, as a reader will see it
    written = np.clip(np.rint(result.ct), -32768, 32767)
    stats = tumor_statistics(written, result.tumor_mask, organ_mask, ct.spacing)
    manifest = {
        "method": method,
        "organ": organ,
        "seed": int(seed),
        "device": result.info.get("device", device),
        "code_version": code_version(),
        "params": result.params,
        "options": options,
        "info": result.info,
        "checkpoint": str(Path(checkpoint_used).resolve()) if checkpoint_used is not None else None,
        "checkpoint_hash": synth.checkpoint_hash(),
        "sampling_steps": result.info.get("sampling_steps"),
        "inputs": {
            "ct": {"path": str(ct_path.resolve()), "sha256": sha256_file(ct_path)},
            "organ_mask": {
                "path": str(organ_mask_path.resolve()),
                "sha256": sha256_file(organ_mask_path),
                "organ_label": organ_label,
            },
            **(
                {
                    "vessel_mask": {
                        "path": str(vessel_mask.resolve()),
                        "sha256": sha256_file(vessel_mask),
                    }
                }
                if vessel_mask is not None
                else {}
            ),
        },
        "outputs": {
            name: {"path": name, "sha256": sha256_file(out_dir / name)}
            for name in ("ct.nii.gz", "tumor_mask.nii.gz")
        },
        "grid": {"shape": list(ct.shape), "spacing": list(ct.spacing)},
        "organ_voxels": int(organ_mask.sum()),
        "tumor": stats,
        "runtime_s": round(time.perf_counter() - started, 3),
        "environment": environment(),
        **({"replay_of": replay_of} if replay_of is not None else {}),
    }
    write_provenance(out_dir / PROVENANCE_NAME, manifest)
    log.info(
        "%s: %s lesion(s) %s mm, contrast %s HU -> %s",
        ct_path.name,
        stats["count"],
        stats["component_diameters_mm"][:10],
        stats["hu_contrast"],
        out_dir,
    )
    return out_dir


def replay_file(source: str | Path, out_dir: str | Path, *, device: str | None = None) -> Path:
    """Re-run a finished synthesis from its provenance.json into ``out_dir``; return it.

    The inputs and the checkpoint must be the very files the provenance names (sha256 checked,
    so a replay never silently runs on changed data); the stored ``params`` are re-applied
    (no new draws). ``device`` defaults to the recorded one: the same volume, bit for bit, is
    promised only on the same device and library versions. The new provenance records
    ``replay_of`` (the source folder and its outputs' hashes); :func:`compare_outputs` says
    whether the volumes agree.
    """
    from synth_backend.io import sha256_file
    from synth_backend.provenance import read_provenance

    source = Path(source)
    manifest_path = source / "provenance.json" if source.is_dir() else source
    if not manifest_path.is_file():
        raise SynthesisInputError(
            source, "has no provenance.json", "pass a folder written by `turingct synth`"
        )
    if Path(out_dir).resolve() == manifest_path.parent.resolve():
        raise SynthesisInputError(
            out_dir, "is the folder being replayed", "pass another --out (the original stays)"
        )
    try:
        manifest = read_provenance(manifest_path)
        missing = [k for k in ("method", "organ", "seed", "params", "inputs") if k not in manifest]
    except (ValueError, UnicodeDecodeError) as exc:
        raise SynthesisInputError(
            manifest_path, f"is not valid JSON ({exc})", "replay an intact provenance.json"
        ) from exc
    if missing or "ct" not in manifest["inputs"] or "organ_mask" not in manifest["inputs"]:
        raise SynthesisInputError(
            manifest_path,
            f"lacks {', '.join(missing) or 'the ct / organ mask inputs'}",
            "replay a provenance.json written by `turingct synth` or `synth batch`",
        )
    inputs = manifest["inputs"]
    for name, entry in inputs.items():
        path = Path(entry["path"])
        if not path.is_file():
            raise SynthesisInputError(
                path,
                f"the {name.replace('_', ' ')} this synthesis used is missing",
                "restore it at that path (a replay runs on the recorded inputs only)",
            )
        if sha256_file(path) != entry["sha256"]:
            raise SynthesisInputError(
                path,
                f"the {name.replace('_', ' ')} changed since the synthesis (sha256 differs)",
                "restore the recorded file; a replay on other data would not be a replay",
            )
    checkpoint = manifest.get("checkpoint")
    if manifest.get("checkpoint_hash") is not None:
        if checkpoint is None or not Path(checkpoint).is_file():
            raise SynthesisInputError(
                checkpoint,
                "the checkpoint this synthesis used is missing",
                "restore it at that path",
            )
        if sha256_file(Path(checkpoint)) != manifest["checkpoint_hash"]:
            raise SynthesisInputError(
                checkpoint,
                "the checkpoint changed since the synthesis (sha256 differs)",
                "restore the recorded checkpoint",
            )
    vessels = inputs.get("vessel_mask")
    try:
        return synthesize_file(
            manifest["method"],
            inputs["ct"]["path"],
            inputs["organ_mask"]["path"],
            organ=manifest["organ"],
            organ_label=inputs["organ_mask"].get("organ_label"),
            out_dir=out_dir,
            seed=manifest["seed"],
            device=device or manifest.get("device") or "auto",
            checkpoint=checkpoint,
            vessel_mask=vessels["path"] if vessels else None,
            replay_params=manifest["params"],
            replay_of={
                "path": str(manifest_path.parent.resolve()),
                "outputs": manifest.get("outputs", {}),
            },
            **manifest.get("options", {}),
        )
    except InputError:  # already says what is wrong (UnknownMethodError is a KeyError too)
        raise
    except (KeyError, TypeError) as exc:  # params of another shape (edited, or another version)
        raise SynthesisInputError(
            manifest_path,
            f"its {manifest['method']} params do not fit this version ({exc!r})",
            "replay a provenance.json written by this version of turingct",
        ) from exc


def compare_outputs(a: str | Path, b: str | Path) -> dict[str, Any]:
    """Voxel comparison of two synthesis folders: per file (ct, tumor mask) the number of
    differing voxels and the largest absolute difference (HU for the CT)."""
    from synth_backend.io import check_same_grid, load_volume

    report: dict[str, Any] = {}
    files: tuple[tuple[str, Literal["ct", "mask"]], ...] = (
        ("ct.nii.gz", "ct"),
        ("tumor_mask.nii.gz", "mask"),
    )
    for name, kind in files:
        va, vb = load_volume(Path(a) / name, kind), load_volume(Path(b) / name, kind)
        check_same_grid(va, vb)
        diff = np.abs(va.array.astype(np.float64) - vb.array.astype(np.float64))
        report[name] = {"differing_voxels": int((diff > 0).sum()), "max_abs": float(diff.max())}
    report["identical"] = all(r["differing_voxels"] == 0 for r in report.values())
    return report

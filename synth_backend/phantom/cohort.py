"""Write a phantom cohort in the AbdomenAtlas-style layout, resumably.

```
OUT/cohort.json
OUT/<case_id>/ct.nii.gz                                int16 HU, LAS-stored affine
OUT/<case_id>/segmentations/<structure>.nii.gz         uint8 0/1 (config.STRUCTURES)
OUT/<case_id>/segmentations/<organ>_tumor.nii.gz       only for cases with a phantom lesion
```
cohort.json is rewritten (atomically) after every finished case, so an interrupted run resumes:
a case listed there whose files exist and whose CT hash matches is skipped.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.errors import InputError
from synth_backend.io import atomic_write, save_volume, sha256_file
from synth_backend.phantom.case import PhantomCase, case_seed, generate_case, measure_hu
from synth_backend.phantom.config import GENERATOR_VERSION, LESION_ORGANS, PhantomConfig
from synth_backend.phantom.intensities import VESSEL_THRESHOLD_HU, table_as_dict

log = logging.getLogger(__name__)
COHORT_JSON = "cohort.json"


class CohortError(InputError):
    """An output folder that cannot be used for the requested cohort: '<file>: <problem>; <fix>'."""


def case_id(index: int) -> str:
    return f"phantom_{index:04d}"


def lesion_plan(index: int, fraction: float) -> str | None:
    """Organ of case ``index``'s phantom lesion, or None.

    Lesions are spread evenly (case i gets one when floor((i + 1) f) > floor(i f)), and the
    organ goes round-robin liver -> pancreas -> kidney over the lesion cases. The plan of case i
    depends only on i and f, never on the cohort size.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"lesion_fraction must be in [0, 1], got {fraction}")
    before = math.floor(index * fraction + 1e-9)
    after = math.floor((index + 1) * fraction + 1e-9)
    return LESION_ORGANS[(after - 1) % len(LESION_ORGANS)] if after > before else None


def write_case(case: PhantomCase, case_dir: Path) -> dict:
    """Write one case's CT and masks; returns its cohort.json entry (files relative to OUT)."""
    seg_dir = case_dir / "segmentations"
    files = []
    for name, mask in case.labels.items():
        save_volume(mask, case.affine, seg_dir / f"{name}.nii.gz", kind="mask")
        files.append(f"{case_dir.name}/segmentations/{name}.nii.gz")
    ct_path = save_volume(case.ct, case.affine, case_dir / "ct.nii.gz", kind="ct")
    files.insert(0, f"{case_dir.name}/ct.nii.gz")
    voxel_ml = float(abs(np.linalg.det(case.affine[:3, :3]))) / 1000.0
    return {
        "case_id": case_dir.name,
        "files": files,
        "ct_sha256": sha256_file(ct_path),
        "volumes_ml": {name: round(int(m.sum()) * voxel_ml, 1) for name, m in case.labels.items()},
        "lesions": case.lesions,
        "noise_std_hu": case.info["noise_std_hu"],
        "measured_hu": measure_hu(case),
        "anatomy": case.anatomy,
    }


def _complete(out: Path, entry: dict) -> bool:
    if not all((out / f).is_file() for f in entry.get("files", [])):
        return False
    return sha256_file(out / entry["files"][0]) == entry.get("ct_sha256")


def summarize_hu(cases: list[dict]) -> dict:
    """Per tissue: table HU and the mean over cases of the measured mean and std."""
    out: dict[str, dict] = {}
    table = table_as_dict()
    for name in table:
        rows = [
            c["measured_hu"]["tissues"][name]
            for c in cases
            if name in c.get("measured_hu", {}).get("tissues", {})
        ]
        if rows:
            out[name] = {
                "table_hu": table[name]["hu"],
                "measured_mean": round(sum(r["mean"] for r in rows) / len(rows), 1),
                "measured_std": round(sum(r["std"] for r in rows) / len(rows), 1),
                "cases": len(rows),
            }
    return out


def _settings(seed: int, config: PhantomConfig, lesion_fraction: float) -> dict:
    return {
        "generator": "turingct.phantom",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "shape": list(config.shape),
        "spacing": list(config.spacing),
        "config": config.to_dict(),
        "lesion_fraction": float(lesion_fraction),
    }


def _write_json(out: Path, settings: dict, cases: dict[str, dict]) -> None:
    from core.settings import code_version

    ordered = [cases[k] for k in sorted(cases)]
    doc = {
        **settings,
        "version": code_version(),
        "n": len(ordered),
        "hu_table": table_as_dict(),
        "vessel_threshold_hu": VESSEL_THRESHOLD_HU,
        "measured_hu": summarize_hu(ordered),
        "cases": ordered,
    }
    text = json.dumps(doc, indent=1)
    atomic_write(out / COHORT_JSON, lambda tmp: Path(tmp).write_text(text))


def load_cohort(out_dir: str | Path) -> dict | None:
    """cohort.json of ``out_dir`` or None; raises CohortError when it is unreadable."""
    path = Path(out_dir) / COHORT_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CohortError(
            path,
            f"is not a readable cohort file ({exc})",
            "delete it (the cases will be regenerated) or choose another output folder",
        ) from exc


def generate_cohort(
    out_dir: str | Path,
    n: int = 4,
    seed: int = 0,
    config: PhantomConfig | None = None,
    lesion_fraction: float = 0.5,
    progress: bool = True,
) -> Path:
    """Generate cases 0..n-1 into ``out_dir`` (layout in the module docstring); returns it.

    Resumable: cases already complete (listed in cohort.json, files present, CT hash equal)
    are skipped; a folder made with other settings (seed, grid, lesion fraction, generator
    version) raises :class:`CohortError` instead of mixing two cohorts.
    """
    config = config or PhantomConfig()
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    lesion_plan(0, lesion_fraction)  # validates the fraction before any work
    out = Path(out_dir)
    settings = _settings(seed, config, lesion_fraction)
    existing = load_cohort(out)
    cases: dict[str, dict] = {}
    if existing is not None:
        old = {k: existing.get(k) for k in settings}
        if old != settings:
            diff = sorted(k for k in settings if old[k] != settings[k])
            raise CohortError(
                out / COHORT_JSON,
                f"was generated with different settings ({', '.join(diff)})",
                "choose another output folder or delete this one",
            )
        cases = {c["case_id"]: c for c in existing.get("cases", [])}
    out.mkdir(parents=True, exist_ok=True)
    done = 0
    for i in tqdm(range(n), desc="phantom cases", unit="case", disable=not progress):
        cid = case_id(i)
        if cid in cases and _complete(out, cases[cid]):
            continue
        start = time.perf_counter()
        organ = lesion_plan(i, lesion_fraction)
        case = generate_case(case_seed(seed, i), config, lesion=organ)
        entry = {"index": i, **write_case(case, out / cid), "lesion_planned": organ}
        entry["seconds"] = round(time.perf_counter() - start, 2)
        cases[cid] = entry
        _write_json(out, settings, cases)
        done += 1
    if done == 0 and existing is not None:
        log.info("all %d cases already in %s; nothing to do", n, out)
    _write_json(out, settings, cases)
    return out

"""Where the machine Turing test's tumors come from: ``--real`` and ``--synthetic`` arguments.

``--real DATASET_OR_DIR``:
- a cases CSV (``ct,mask,organ[,arm,label]``, :func:`evaluation.radiomics.read_cases`): rows of
  the organ whose arm is not ``synthetic``;
- a dataset folder: an MSD task (``dataset.json``) or an AbdomenAtlas-style folder
  (``<case>/ct.nii.gz`` + ``segmentations/<organ>_tumor.nii.gz``, also the phantom cohort);
- otherwise the name of a catalog dataset: its real tumors of the organ.

``--synthetic DIR_OR_METHOD`` (repeatable; ``LABEL=DIR`` names the arm):
- a folder of synthesis outputs (``<case>/ct.nii.gz`` + ``tumor_mask.nii.gz`` +
  ``provenance.json``, as ``turingct synth`` / ``synth batch`` write them): the method (and its
  ``profile`` option, if any) is read from each provenance file;
- otherwise a method name: the catalog's synthetic volumes of that method.

The cross-validation group of a tumor is its source CT: the sha256 of the real tumor's scan, of
the scan a synthetic tumor was put into (provenance ``inputs.ct.sha256``; catalog: the source
volume's hash).
"""

from __future__ import annotations

import json
from pathlib import Path

from evaluation.realism import TumorSource
from evaluation.tables import EvaluationInputError


def _sha(path: Path, cache: dict[str, str]) -> str:
    from synth_backend.io import sha256_file

    key = str(Path(path).resolve())
    if key not in cache:
        cache[key] = sha256_file(key)
    return cache[key]


def real_sources(arg: str, organ: str, db: str | None = None) -> tuple[list[TumorSource], str]:
    """Real tumors of ``organ`` from a cases CSV, a dataset folder or a catalog dataset;
    returns the sources and a description for the conventions."""
    path = Path(arg)
    cache: dict[str, str] = {}
    if path.is_file() and path.suffix.lower() == ".csv":
        from evaluation.radiomics import read_cases

        df = read_cases(path)
        if "arm" in df.columns:
            df = df[df["arm"] != "synthetic"]
        df = df[df["organ"] == organ]
        if df.empty:
            raise EvaluationInputError(
                path,
                f"no real {organ} row",
                f"add rows with organ={organ} (organ absent from --real)",
            )
        out = []
        for i, r in enumerate(df.itertuples(index=False)):
            label = getattr(r, "label", "")
            ct = Path(r.ct)
            out.append(
                TumorSource(
                    ct,
                    (Path(r.mask),),
                    "real",
                    "",
                    organ,
                    _sha(ct, cache),
                    f"{ct.parent.name}/{Path(r.mask).name}#{i}",
                    (int(label),) if label else None,
                )
            )
        return out, f"{path} ({len(out)} rows)"
    if path.is_dir():
        return _folder_sources(path, organ, cache), f"folder {path}"
    if path.exists() or any(c in arg for c in "/\\") or arg.endswith(".csv"):
        raise EvaluationInputError(
            path,
            "is neither a cases CSV nor a dataset folder",
            "pass a cases CSV, an MSD / AbdomenAtlas folder or a catalog dataset name",
        )
    return _catalog_real(arg, organ, db), f"catalog dataset {arg}"


def _folder_sources(root: Path, organ: str, cache: dict[str, str]) -> list[TumorSource]:
    from synth_backend import datasets

    if (root / "dataset.json").is_file():
        records = list(datasets.read_msd(root, (organ,)))
    else:
        try:
            records = list(datasets.read_atlas(root, (organ,)))
        except datasets.DatasetLayoutError as exc:
            raise EvaluationInputError(
                exc.where, exc.problem, "pass an MSD task or AbdomenAtlas-style folder"
            ) from exc
    out = []
    for rec in records:
        for o in rec.organs:
            if o.organ == organ and o.tumor_paths and all(p.is_file() for p in o.tumor_paths):
                out.append(
                    TumorSource(
                        rec.ct_path,
                        tuple(o.tumor_paths),
                        "real",
                        "",
                        organ,
                        _sha(rec.ct_path, cache),
                        rec.case_id,
                        tuple(o.tumor_labels) if o.tumor_labels else None,
                    )
                )
    if not out:
        raise EvaluationInputError(
            root,
            f"no {organ} tumor mask in any case",
            f"pass a folder with annotated {organ} tumors (organ absent or no tumors)",
        )
    return out


def _catalog_real(name: str, organ: str, db: str | None) -> list[TumorSource]:
    from sqlalchemy import select

    from db.models import Dataset, Origin, TumorKind, Volume, VolumeOrgan
    from db.session import open_engine, session_scope

    with session_scope(open_engine(db)) as session:
        dataset = session.scalar(select(Dataset).where(Dataset.name == name))
        if dataset is None:
            raise EvaluationInputError(
                "--real",
                f"{name!r} is not a file, folder or catalog dataset",
                "list datasets with `turingct data list`",
            )
        rows = session.scalars(
            select(VolumeOrgan)
            .join(Volume)
            .where(
                Volume.dataset_id == dataset.id,
                VolumeOrgan.organ == organ,
                Volume.origin != Origin.SYNTHETIC,
                VolumeOrgan.tumor_kind.in_([TumorKind.REAL, TumorKind.PHANTOM_LESION]),
            )
            .order_by(Volume.case_id)
        ).all()
        out = [
            TumorSource(
                Path(vo.volume.ct_path),
                tuple(Path(p) for p in vo.tumor_paths),
                "real",
                "",
                organ,
                vo.volume.ct_sha256,
                vo.volume.case_id,
                tuple(vo.tumor_labels) if vo.tumor_labels else None,
            )
            for vo in rows
        ]
    if not out:
        raise EvaluationInputError(
            "--real",
            f"catalog dataset {name!r} has no real {organ} tumor",
            "import a dataset with annotated tumors of that organ",
        )
    return out


# profile names that mean "the method as it runs by default" (hand-crafted's is "train")
DEFAULT_PROFILES = {"", "default", "train"}


def method_label(method: str, profile: object) -> str:
    """``method`` or ``method:profile`` for a non-default profile (e.g. handcrafted:vtt)."""
    profile = str(profile or "")
    return method if profile in DEFAULT_PROFILES else f"{method}:{profile}"


def _label(manifest: dict) -> str:
    return method_label(
        str(manifest.get("method", "unknown")),
        (manifest.get("options") or {}).get("profile")
        or (manifest.get("params") or {}).get("profile"),
    )


def synthetic_sources(arg: str, organ: str, db: str | None = None) -> tuple[list[TumorSource], str]:
    """Synthetic tumors of ``organ`` from a folder of synthesis outputs or a catalog method."""
    from synth_backend.registry import available_methods

    label, _, rest = arg.partition("=")
    explicit = bool(rest) and not Path(arg).exists()
    path = Path(rest if explicit else arg)
    if path.is_dir():
        return _output_sources(path, organ, label if explicit else None), f"folder {path}"
    if not explicit and arg in available_methods():
        return _catalog_synthetic(arg, organ, db), f"catalog method {arg}"
    raise EvaluationInputError(
        path,
        "is neither a folder of synthesis outputs nor a method",
        f"pass a folder or one of {', '.join(available_methods())}",
    )


def _output_sources(root: Path, organ: str, label: str | None) -> list[TumorSource]:
    from synth_backend.provenance import PROVENANCE_NAME

    manifests = sorted(root.rglob(PROVENANCE_NAME))
    if not manifests:
        raise EvaluationInputError(
            root,
            f"no {PROVENANCE_NAME} below it",
            "pass the output folder of `turingct synth` / `turingct synth batch`",
        )
    out = []
    for mpath in manifests:
        try:
            manifest = json.loads(mpath.read_text())
        except json.JSONDecodeError as exc:
            raise EvaluationInputError(
                mpath, f"invalid JSON ({exc})", "re-run the synthesis of that case"
            ) from exc
        if manifest.get("organ") != organ:
            continue
        case_dir = mpath.parent
        ct, tumor = case_dir / "ct.nii.gz", case_dir / "tumor_mask.nii.gz"
        if not ct.is_file() or not tumor.is_file():
            raise EvaluationInputError(
                case_dir,
                "lacks ct.nii.gz or tumor_mask.nii.gz",
                "re-run the synthesis of that case",
            )
        source = ((manifest.get("inputs") or {}).get("ct") or {}).get("sha256") or str(ct)
        out.append(
            TumorSource(
                ct,
                (tumor,),
                "synthetic",
                label or _label(manifest),
                organ,
                source,
                f"{case_dir.relative_to(root)}" if case_dir != root else case_dir.name,
            )
        )
    if not out:
        raise EvaluationInputError(
            root,
            f"no synthetic {organ} tumor (organ absent)",
            f"pass outputs synthesized with --organ {organ}",
        )
    return out


def _catalog_synthetic(method: str, organ: str, db: str | None) -> list[TumorSource]:
    from sqlalchemy import select

    from db.models import Origin, SyntheticProvenance, TumorKind, Volume, VolumeOrgan
    from db.session import open_engine, session_scope

    with session_scope(open_engine(db)) as session:
        rows = session.execute(
            select(VolumeOrgan, SyntheticProvenance)
            .join(Volume, VolumeOrgan.volume_id == Volume.id)
            .join(SyntheticProvenance, SyntheticProvenance.volume_id == Volume.id)
            .where(
                Volume.origin == Origin.SYNTHETIC,
                SyntheticProvenance.method == method,
                VolumeOrgan.organ == organ,
                VolumeOrgan.tumor_kind == TumorKind.SYNTHETIC,
            )
            .order_by(Volume.case_id)
        ).all()
        out = []
        for vo, prov in rows:
            src = session.get(Volume, prov.source_volume_id) if prov.source_volume_id else None
            label = method_label(method, (prov.params or {}).get("profile"))
            out.append(
                TumorSource(
                    Path(vo.volume.ct_path),
                    tuple(Path(p) for p in vo.tumor_paths),
                    "synthetic",
                    label,
                    organ,
                    src.ct_sha256 if src else vo.volume.ct_sha256,
                    vo.volume.case_id,
                    tuple(vo.tumor_labels) if vo.tumor_labels else None,
                )
            )
    if not out:
        raise EvaluationInputError(
            "--synthetic",
            f"the catalog has no synthetic {organ} tumor of {method}",
            f"synthesize with `turingct synth batch --method "
            f"{method} --organ {organ}` (registered) or pass a folder",
        )
    return out

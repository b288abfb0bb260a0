"""Radiomics features of tumor regions, t-SNE maps and the 3-way organ-origin SVM.

Arrays are (x, y, z) RAS with a 4x4 affine (mm); CT in HU, tumor masks any nonzero = tumor.
Feature extraction is pyradiomics with recorded settings (:data:`DEFAULT_SETTINGS`): resampling to
1 mm isotropic (B-spline image, nearest-neighbour mask), fixed bin width 25 HU, classes shape (3D),
first order, GLCM, GLRLM, GLSZM, NGTDM, GLDM on the original image. pyradiomics is imported
lazily (it is an optional dependency, see pyproject.toml).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

import numpy as np
import pandas as pd

from evaluation.tables import EvaluationInputError

FEATURE_CLASSES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "ngtdm", "gldm")
DEFAULT_SETTINGS: dict[str, object] = {
    "binWidth": 25,
    "resampledPixelSpacing": [1.0, 1.0, 1.0],
    "interpolator": "sitkBSpline",
    "padDistance": 5,
    "label": 1,
    "geometryTolerance": 1e-4,
    "correctMask": True,
}
CASE_COLUMNS = ("ct", "mask", "organ")


class ExtractorSpec(TypedDict):
    """A feature extraction run as :func:`extractor_settings` describes it."""

    settings: dict[str, object]  # pyradiomics extractor keyword arguments
    classes: list[str]
    image_types: list[str]


def extractor_settings(
    settings: Mapping[str, object] | None = None, classes=FEATURE_CLASSES, image_types=("Original",)
) -> ExtractorSpec:
    """The full, recordable description of a feature extraction run."""
    return {
        "settings": {**DEFAULT_SETTINGS, **(settings or {})},
        "classes": list(classes),
        "image_types": list(image_types),
    }


def make_extractor(spec: ExtractorSpec | None = None):
    """A configured ``radiomics.featureextractor.RadiomicsFeatureExtractor``."""
    try:
        from radiomics import featureextractor
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "pyradiomics is not installed: pip install --no-build-isolation "
            "pyradiomics (see README)"
        ) from exc
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    spec = spec or extractor_settings()
    ext = featureextractor.RadiomicsFeatureExtractor(**spec["settings"])
    ext.disableAllFeatures()
    for cls in spec["classes"]:
        ext.enableFeatureClassByName(cls)
    ext.disableAllImageTypes()
    for image_type in spec["image_types"]:
        ext.enableImageTypeByName(image_type)
    return ext


def to_sitk(array: np.ndarray, affine: np.ndarray, *, is_mask: bool = False):
    """An (x, y, z) array + its RAS affine as a SimpleITK image (LPS physical space).

    Integer-valued CT becomes int16 (how the project and most datasets store HU): SimpleITK
    resamples in the input's pixel type, so this keeps features identical to pyradiomics run on
    the int16 file. Non-integer CT stays float32.
    """
    import SimpleITK as sitk

    affine = np.asarray(affine, dtype=np.float64)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    flip = np.diag([-1.0, -1.0, 1.0])  # RAS -> LPS
    data = np.asarray(array)
    if is_mask:
        data = (data != 0).astype(np.uint8)
    elif np.array_equal(data, np.round(data)) and data.min() >= -32768 and data.max() <= 32767:
        data = data.astype(np.int16)
    else:
        data = data.astype(np.float32)
    img = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))  # ITK: (z, y, x)
    img.SetSpacing(tuple(float(s) for s in spacing))
    img.SetOrigin(tuple(float(v) for v in flip @ affine[:3, 3]))
    img.SetDirection(tuple(float(v) for v in (flip @ (affine[:3, :3] / spacing)).ravel()))
    return img


def tumor_features(
    ct: np.ndarray,
    mask: np.ndarray,
    affine: np.ndarray,
    spec: ExtractorSpec | None = None,
    extractor=None,
) -> dict[str, float]:
    """pyradiomics features of the tumor ``mask != 0`` in ``ct`` (HU); diagnostics dropped.

    The arrays are passed uncropped on purpose: pyradiomics anchors its resampled grid to the
    image origin, so cropping first would shift the grid and change every feature slightly.
    Raises ``ValueError`` for an empty mask.
    """
    binary = np.asarray(mask) != 0
    if not binary.any():
        raise ValueError("tumor mask is empty")
    extractor = extractor or make_extractor(spec)
    result = extractor.execute(to_sitk(ct, affine), to_sitk(binary, affine, is_mask=True))
    return {k: float(v) for k, v in result.items() if not k.startswith("diagnostics_")}


def read_cases(path: str | Path) -> pd.DataFrame:
    """Cases CSV: columns ``ct, mask, organ`` (+ optional ``arm``, ``label``); paths relative
    to the CSV's folder are resolved. ``label`` picks one mask value (default: any nonzero)."""
    path = Path(path)
    if not path.is_file():
        raise EvaluationInputError(path, "file does not exist", "check the path to the cases CSV")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df.columns = [c.strip().lower() for c in df.columns]
    missing = [c for c in CASE_COLUMNS if c not in df.columns]
    if missing:
        raise EvaluationInputError(
            path,
            f"missing column(s) {', '.join(missing)}",
            "the cases CSV needs columns ct,mask,organ (+ optional arm)",
        )
    for col in ("ct", "mask"):
        df[col] = [
            str((path.parent / v).resolve()) if v and not Path(v).is_absolute() else v
            for v in df[col].str.strip()
        ]
        for i, v in enumerate(df[col]):
            if not v or not Path(v).is_file():
                raise EvaluationInputError(
                    path,
                    f"column {col} on line {i + 2}: file {v!r} does not exist",
                    "fix the path (relative paths are relative to the CSV)",
                )
    df["organ"] = df["organ"].str.strip().str.lower()
    if "arm" in df.columns:
        df["arm"] = df["arm"].str.strip().str.lower()
    return df


def extract_cases(
    cases: pd.DataFrame, spec: ExtractorSpec | None = None, *, progress: bool = False
) -> pd.DataFrame:
    """Features of every case row (see :func:`read_cases`); metadata columns kept in front."""
    from tqdm import tqdm

    from synth_backend.io import check_same_grid, load_volume

    extractor = make_extractor(spec)
    rows = []
    for case in tqdm(
        cases.itertuples(index=False),
        total=len(cases),
        desc="radiomics",
        unit="tumor",
        disable=not progress,
    ):
        ct = load_volume(case.ct, kind="ct")
        mask = load_volume(case.mask, kind="mask")
        check_same_grid(ct, mask)
        label = getattr(case, "label", "")
        tumor = mask.array == int(label) if label else mask.array != 0
        if not tumor.any():
            raise EvaluationInputError(
                case.mask, "tumor mask is empty", "pass a mask with a tumor (or the right label)"
            )
        # extract on the file's own voxel grid and orientation, so the resampled grid (and so
        # every feature) equals a direct pyradiomics call on the files
        feats = tumor_features(
            ct.to_source_array(ct.array),
            ct.to_source_array(tumor),
            ct.source_affine if ct.source_affine is not None else ct.affine,
            extractor=extractor,
        )
        rows.append({**case._asdict(), **feats})
    return pd.DataFrame(rows)


def feature_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """The numeric radiomics columns (pyradiomics names start with the image type)."""
    cols = [c for c in table.columns if c.startswith(("original_", "log-", "wavelet-"))]
    return table[cols].astype(float)


def tsne_embedding(
    features: pd.DataFrame | np.ndarray, *, seed: int = 0, perplexity: float | None = None
) -> np.ndarray:
    """2D t-SNE (scikit-learn, PCA init) of z-scored features; perplexity defaults to
    ``min(30, (n - 1) / 3)`` so small sets work. Returns (n, 2)."""
    from sklearn.manifold import TSNE
    from sklearn.preprocessing import StandardScaler

    x = StandardScaler().fit_transform(np.nan_to_num(np.asarray(features, dtype=float)))
    n = x.shape[0]
    if n < 4:
        raise EvaluationInputError(
            "features", f"t-SNE needs at least 4 tumors, got {n}", "pass 4 or more tumors"
        )
    perplexity = perplexity or max(1.0, min(30.0, (n - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(
        x
    )


def svm_organ_origin(
    features: pd.DataFrame | np.ndarray,
    organs,
    *,
    n_splits: int = 10,
    test_size: float = 0.3,
    seed: int = 0,
    C: float = 1.0,
) -> pd.DataFrame:
    """3-way SVM (RBF, standardized features) over repeated stratified train/test splits.

    Returns one row per split with macro train/test precision and recall
    (``zero_division=0``). Chance level for balanced organs is 1/3.
    """
    from sklearn.metrics import precision_score, recall_score
    from sklearn.model_selection import StratifiedShuffleSplit
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x = np.nan_to_num(np.asarray(features, dtype=float))
    y = np.asarray(organs)
    splitter = StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)
    rows = []
    for i, (train, test) in enumerate(splitter.split(x, y)):
        model = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=C, gamma="scale"))
        model.fit(x[train], y[train])
        row = {"split": i}
        for part, idx in (("train", train), ("test", test)):
            pred = model.predict(x[idx])
            row[f"{part}_precision"] = precision_score(
                y[idx], pred, average="macro", zero_division=0
            )
            row[f"{part}_recall"] = recall_score(y[idx], pred, average="macro", zero_division=0)
        rows.append(row)
    return pd.DataFrame(rows)


def summarize_svm(splits: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over splits of each precision/recall column."""
    metrics = [c for c in splits.columns if c != "split"]
    return pd.DataFrame(
        {
            "metric": metrics,
            "mean": splits[metrics].mean().to_numpy(),
            "sd": splits[metrics].std(ddof=1).to_numpy(),
            "n_splits": len(splits),
        }
    )


def conventions(spec: ExtractorSpec, seed: int, n_splits: int, test_size: float) -> dict[str, str]:
    return {
        "features": f"pyradiomics, settings {dict(spec['settings'])}, classes "
        f"{', '.join(spec['classes'])}, image types {', '.join(spec['image_types'])}",
        "tsne": f"scikit-learn TSNE on z-scored features, PCA init, random_state={seed}",
        "svm": f"StandardScaler + SVC(rbf); {n_splits} stratified shuffle splits, "
        f"test_size={test_size}, random_state={seed}; macro precision/recall",
        "chance": "1/3 for three balanced organs",
    }

"""The machine Turing test: can a classifier tell real tumors from synthetic ones?

A pre-screen before radiologists spend hours on a study. Every tumor (one connected lesion of a
tumor mask) becomes a **case made exactly like a blinded study case** (:mod:`studies.blinding`:
the study spacing, a fixed box centred on the lesion, one linear interpolation, int16 HU
clipped to [-1024, 3071]), so the machine sees what readers see. On those crops:

- **radiomics discriminators**: pyradiomics features (:mod:`evaluation.radiomics` settings) of the
  tumor and of a 5 mm rim around it (the tumor-liver interface readers look at) -> a
  standardized logistic regression and a standardized RBF SVM (scikit-learn pipelines);
- **CNN discriminator**: a small MONAI 3D CNN trained on the windowed crops with augmentation
  (:mod:`evaluation.realism_cnn`).

Every discriminator is cross-validated with cases **grouped by source volume** (scikit-learn
``StratifiedGroupKFold``: no CT volume has cases in both the training and the test fold, so a
model cannot learn a patient's liver instead of the tumor). The out-of-fold scores of all folds
are pooled into one ROC AUC (real tumor = positive class, score = "looks real"), with a 95%
percentile bootstrap CI over cases (resampled within arm) and, for the radiomics models, a
label-permutation p-value (a bootstrap CI of cross-validated scores is too narrow with few
cases, see :mod:`studies.audit`). **Chance = 0.5; lower is more realistic.**

Next to the AUCs: the FRD between the synthetic and real tumor feature sets
(:mod:`evaluation.frd`) and *which features give a method away*: every feature's univariate AUC
(in-sample, no model), the top ones per method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import ndimage

from evaluation.tables import EvaluationInputError

if TYPE_CHECKING:
    from evaluation.radiomics import ExtractorSpec
    from evaluation.realism_cnn import CnnOptions

RIM_MM = 5.0
MIN_LESION_ML = 0.1  # smaller connected components (specks) are not cases
MIN_CASES_PER_ARM = 4
MAX_FOLDS = 5
N_BOOTSTRAP = 2000
N_PERMUTATIONS = 200
TOP_FEATURES = 10
RIM_PREFIX = "rim_"
RIM_CLASSES = (
    "firstorder",
    "glcm",
    "glrlm",
    "glszm",
    "ngtdm",
    "gldm",
)  # no shape: it is the tumor's
RADIOMICS_MODELS = ("radiomics-logreg", "radiomics-svm")
DISCRIMINATORS = (*RADIOMICS_MODELS, "cnn")
TABLE_COLUMNS = (
    "method",
    "organ",
    "discriminator",
    "auc",
    "auc_ci_low",
    "auc_ci_high",
    "p_value",
    "auc_within_fold",
    "n_real",
    "n_synthetic",
    "n_volumes",
    "n_folds",
    "frd",
    "frd_n_features",
)
FEATURE_COLUMNS = (
    "method",
    "organ",
    "rank",
    "feature",
    "region",
    "auc",
    "higher_in",
    "median_real",
    "median_synthetic",
    "p_mannwhitney",
)


@dataclass(frozen=True)
class TumorSource:
    """One CT with a tumor mask: every connected lesion of it becomes a case.

    ``volume`` is the grouping key of cross-validation: the source CT (sha256 of the patient
    scan a synthetic tumor was put into, or of the real tumor's own scan), so real and synthetic
    tumors of one patient fall in the same fold.
    """

    ct_path: Path
    tumor_paths: tuple[Path, ...]
    arm: str  # "real" or "synthetic"
    method: str  # "" for real tumors
    organ: str
    volume: str
    case: str
    tumor_labels: tuple[int, ...] | None = None  # None: any nonzero voxel


@dataclass
class RealismCase:
    """A blinded crop of one lesion: int16 HU and uint8 lesion mask at the study spacing."""

    case: str
    arm: str
    method: str
    organ: str
    volume: str
    ct: np.ndarray
    tumor: np.ndarray
    volume_ml: float
    diameter_mm: float

    @property
    def label(self) -> int:
        return int(self.arm == "real")


@dataclass
class RealismResult:
    """What :func:`run_realism` returns: the tables written and stored."""

    table: pd.DataFrame
    features: pd.DataFrame
    scores: pd.DataFrame
    cases: pd.DataFrame
    conventions: dict[str, str] = field(default_factory=dict)

    def summary(self) -> dict[str, float]:
        """``{"<method> <discriminator> auc": value}`` headline numbers."""
        return {f"{r.method} {r.discriminator} auc": r.auc for r in self.table.itertuples()}


# --------------------------------------------------------------------------- cases


def _lesions(
    tumor: np.ndarray, spacing: Sequence[float], min_ml: float
) -> list[tuple[np.ndarray, int]]:
    """(boolean component, voxel count) of every 26-connected lesion of at least ``min_ml``."""
    labels, n = ndimage.label(tumor, structure=np.ones((3, 3, 3), dtype=bool))
    voxel_ml = float(np.prod(spacing)) / 1000.0
    counts = np.bincount(labels.ravel(), minlength=n + 1)
    return [
        (labels == i, int(counts[i])) for i in range(1, n + 1) if counts[i] * voxel_ml >= min_ml
    ]


def make_cases(
    sources: Sequence[TumorSource],
    presentation=None,
    *,
    min_lesion_ml: float = MIN_LESION_ML,
    progress: Callable[[str], None] | None = None,
) -> list[RealismCase]:
    """Blinded crops (see the module docstring) of every lesion of every source.

    ``presentation`` is a :class:`studies.spec.Presentation` (default: a study's default: 1 mm
    isotropic, 96 x 96 x 64 mm); the crop is always centred on the lesion. A source whose
    tumor mask is empty, or has no lesion of ``min_lesion_ml``, is an input error.
    """
    from studies.blinding import CaseArrays, blind_arrays, target_shape
    from studies.spec import Crop, Presentation
    from synth_backend.geometry import equivalent_diameter_mm
    from synth_backend.io import check_same_grid, load_volume

    presentation = presentation or Presentation()
    if presentation.crop.around != "tumor" or presentation.crop.size is None:
        # a tumor-centred box is what a reader of a Turing study sees; keep the spacing
        presentation = Presentation(spacing_mm=presentation.spacing_mm, crop=Crop())
    shape = target_shape(presentation)
    cases: list[RealismCase] = []
    cached = None
    for src in sources:
        if progress:
            progress(src.case)
        if cached is None or cached[0] != src.ct_path:  # sources of one scan come together
            cached = (src.ct_path, load_volume(src.ct_path, "ct"))
        ct = cached[1]
        tumor = np.zeros(ct.shape, dtype=bool)
        for path in src.tumor_paths:
            mask = load_volume(path, "mask")
            check_same_grid(ct, mask)
            tumor |= np.isin(mask.array, src.tumor_labels) if src.tumor_labels else mask.array != 0
        lesions = _lesions(tumor, ct.spacing, min_lesion_ml)
        if not lesions:
            what = "is empty" if not tumor.any() else f"has no lesion of >= {min_lesion_ml} mL"
            raise EvaluationInputError(
                src.tumor_paths[0],
                f"{src.organ} tumor mask {what}",
                "pass a case with a tumor (or the right label)",
            )
        voxel_ml = float(np.prod(ct.spacing)) / 1000.0
        for k, (lesion, n_vox) in enumerate(lesions):
            arrays = CaseArrays(ct.array, lesion, lesion, ct.affine, ct.spacing)
            crop_ct, crop_tumor, *_ = blind_arrays(arrays, presentation, shape)
            name = src.case if len(lesions) == 1 else f"{src.case}#{k + 1}"
            cases.append(
                RealismCase(
                    name,
                    src.arm,
                    src.method,
                    src.organ,
                    src.volume,
                    crop_ct,
                    crop_tumor,
                    round(n_vox * voxel_ml, 4),
                    round(equivalent_diameter_mm(n_vox, ct.spacing), 2),
                )
            )
    return cases


def case_table(cases: Sequence[RealismCase]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "case": c.case,
                "arm": c.arm,
                "method": c.method,
                "organ": c.organ,
                "volume": c.volume[:16],
                "volume_ml": c.volume_ml,
                "diameter_mm": c.diameter_mm,
            }
            for c in cases
        ]
    )


# --------------------------------------------------------------------------- features


def rim_mask(tumor: np.ndarray, spacing: Sequence[float], rim_mm: float = RIM_MM) -> np.ndarray:
    """Voxels within ``rim_mm`` (Euclidean, mm) outside the tumor."""
    tumor = np.asarray(tumor) != 0
    dist = ndimage.distance_transform_edt(~tumor, sampling=tuple(float(s) for s in spacing))
    return (~tumor) & (dist <= rim_mm)


def rim_spec(spec: ExtractorSpec) -> ExtractorSpec:
    return {**spec, "classes": [c for c in spec["classes"] if c in RIM_CLASSES]}


def case_features(
    cases: Sequence[RealismCase],
    spacing: Sequence[float],
    spec: ExtractorSpec | None = None,
    *,
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """pyradiomics features of each crop's tumor and of its 5 mm rim (``rim_`` prefix), on the
    blinded crop itself (the study spacing). Rows follow ``cases``."""
    from evaluation.radiomics import extractor_settings, make_extractor, tumor_features
    from studies.blinding import blinded_affine

    spec = spec or extractor_settings()
    tumor_ext, rim_ext = make_extractor(spec), make_extractor(rim_spec(spec))
    rows = []
    for c in cases:
        if progress:
            progress(c.case)
        affine = blinded_affine(c.ct.shape, spacing)
        row = tumor_features(c.ct, c.tumor, affine, extractor=tumor_ext)
        rim = rim_mask(c.tumor, spacing)
        if rim.any():
            row.update(
                {
                    RIM_PREFIX + k: v
                    for k, v in tumor_features(c.ct, rim, affine, extractor=rim_ext).items()
                }
            )
        rows.append(row)
    return pd.DataFrame(rows)


def tumor_columns(features: pd.DataFrame) -> list[str]:
    return [c for c in features.columns if not c.startswith(RIM_PREFIX)]


# --------------------------------------------------------------------------- statistics


def grouped_folds(
    y: np.ndarray, groups: Sequence[str], *, seed: int, max_folds: int = MAX_FOLDS
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds with no source volume in both training and test
    (``StratifiedGroupKFold``, as many folds as volumes up to ``max_folds`` and the smaller
    arm's size).

    Raises an input error when that is impossible: one volume only, or a training fold that
    would lack an arm (e.g. every real tumor comes from one scan).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    group_ids = np.asarray(groups)
    n_groups = len(np.unique(group_ids))
    if n_groups < 2:
        raise EvaluationInputError(
            "--real/--synthetic",
            "every case comes from one source volume",
            "cross-validation grouped by volume needs tumors from at least 2 CT volumes",
        )
    # sklearn needs at least one case of each arm per fold
    n_splits = min(max_folds, n_groups, int(np.bincount(np.asarray(y, int)).min()))
    if n_splits < 2:
        raise EvaluationInputError(
            "--real/--synthetic", "an arm has a single case", "add cases to both arms"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(splitter.split(np.zeros(len(y)), y, group_ids))
    for train, _ in folds:
        if len(np.unique(y[train])) < 2:
            arm = "real" if not y[train].any() else "synthetic"
            raise EvaluationInputError(
                f"--{arm}",
                f"a training fold has no {arm} tumor (all {arm} "
                "tumors come from too few CT volumes)",
                f"add {arm} tumors from at least 2 CT volumes",
            )
    return folds


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (Mann-Whitney, ties 1/2; equal to ``sklearn.metrics.roc_auc_score``)."""
    from studies.audit import auc_mann_whitney

    return float(auc_mann_whitney(np.asarray(y), np.asarray(scores, dtype=float)))


def within_fold_auc(y: np.ndarray, scores: np.ndarray, fold: np.ndarray) -> float:
    """AUC over the real-synthetic pairs that share a test fold (NaN when no fold has both).

    Each fold is scored by its own model, so pooled out-of-fold scores mix models whose score
    scales differ; comparing only pairs scored by the same model removes that offset.
    """
    from scipy.stats import rankdata

    u, pairs = 0.0, 0
    for k in np.unique(fold):
        yk, sk = y[fold == k], np.asarray(scores, float)[fold == k]
        n_pos, n_neg = int(yk.sum()), int((1 - yk).sum())
        if n_pos and n_neg:
            u += rankdata(sk)[yk == 1].sum() - n_pos * (n_pos + 1) / 2.0
            pairs += n_pos * n_neg
    return u / pairs if pairs else float("nan")


def bootstrap_auc_ci(
    y: np.ndarray, scores: np.ndarray, *, seed: int, n_boot: int = N_BOOTSTRAP
) -> tuple[float, float]:
    """95% percentile interval of the AUC over cases resampled within arm."""
    from studies.audit import auc_mann_whitney

    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    idx = np.concatenate(
        [rng.choice(pos, (n_boot, pos.size)), rng.choice(neg, (n_boot, neg.size))], axis=1
    )
    lo, hi = np.percentile(auc_mann_whitney(y[idx], np.asarray(scores, float)[idx]), [2.5, 97.5])
    return float(lo), float(hi)


def radiomics_model(name: str, seed: int):
    """A scikit-learn pipeline: impute, drop constant features, z-score, classify."""
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    if name == "radiomics-logreg":
        # strong L2: hundreds of features on tens of tumors
        clf = LogisticRegression(C=0.1, class_weight="balanced", solver="liblinear")
    elif name == "radiomics-svm":
        clf = SVC(kernel="rbf", C=1.0, gamma="scale", class_weight="balanced", random_state=seed)
    else:
        raise ValueError(f"unknown radiomics model {name!r}")
    return make_pipeline(
        SimpleImputer(strategy="median"), VarianceThreshold(), StandardScaler(), clf
    )


def feature_array(features: pd.DataFrame) -> np.ndarray:
    """Float matrix; +-inf -> NaN (imputed inside each training fold)."""
    x = features.to_numpy(dtype=float, copy=True)
    x[~np.isfinite(x)] = np.nan
    return x


def oof_scores(x: np.ndarray, y: np.ndarray, folds, model: str, seed: int) -> np.ndarray:
    """Out-of-fold decision scores ("looks real") of a radiomics model."""
    out = np.full(len(y), np.nan)
    for train, test in folds:
        pipe = radiomics_model(model, seed).fit(x[train], y[train])
        out[test] = pipe.decision_function(x[test])
    return out


def permutation_p(
    x: np.ndarray,
    y: np.ndarray,
    folds,
    model: str,
    observed: float,
    *,
    seed: int,
    n_perm: int = N_PERMUTATIONS,
) -> float:
    """One-sided p-value of the cross-validated AUC against label permutations (same folds,
    labels shuffled, the whole cross-validation refitted); permutations that leave a training
    fold with one arm are redrawn."""
    rng = np.random.default_rng(seed)
    null: list[float] = []
    tries = 0
    while len(null) < n_perm and tries < 20 * n_perm:
        tries += 1
        yp = rng.permutation(y)
        if any(len(np.unique(yp[train])) < 2 or len(np.unique(yp)) < 2 for train, _ in folds):
            continue
        null.append(auc(yp, oof_scores(x, yp, folds, model, seed)))
    null_a = np.asarray(null)
    return float((1 + np.sum(null_a >= observed - 1e-12)) / (len(null_a) + 1))


def univariate_features(
    features: pd.DataFrame, y: np.ndarray, top: int = TOP_FEATURES
) -> pd.DataFrame:
    """The ``top`` features that separate the arms best on their own: univariate AUC (real =
    positive; > 0.5 = higher in real tumors), ranked by ``max(auc, 1 - auc)``, with medians
    and the two-sided Mann-Whitney p-value (uncorrected: hundreds of features are tested)."""
    from scipy.stats import mannwhitneyu

    rows = []
    x = feature_array(features)
    for j, name in enumerate(features.columns):
        v = x[:, j]
        ok = np.isfinite(v)
        yr, vr = y[ok], v[ok]
        if yr.sum() < 2 or (1 - yr).sum() < 2 or np.ptp(vr) == 0:
            continue
        a = auc(yr, vr)
        p = float(mannwhitneyu(vr[yr == 1], vr[yr == 0], alternative="two-sided").pvalue)
        rows.append(
            {
                "feature": name.removeprefix(RIM_PREFIX),
                "region": "rim" if name.startswith(RIM_PREFIX) else "tumor",
                "auc": a,
                "higher_in": "real" if a > 0.5 else ("synthetic" if a < 0.5 else "-"),
                "median_real": float(np.median(vr[yr == 1])),
                "median_synthetic": float(np.median(vr[yr == 0])),
                "p_mannwhitney": p,
                "_sep": max(a, 1 - a),
            }
        )
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=[c for c in FEATURE_COLUMNS if c not in ("method", "organ")])
    df = df.sort_values(["_sep", "feature"], ascending=[False, True]).head(top)
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df.drop(columns="_sep").reset_index(drop=True)


# --------------------------------------------------------------------------- the test


def check_arms(cases: Sequence[RealismCase], organ: str, methods: Sequence[str]) -> None:
    """Input errors for an unusable test: no real tumor, or fewer than 4 cases in an arm."""
    n_real = sum(c.arm == "real" for c in cases)
    if n_real == 0:
        raise EvaluationInputError(
            "--real",
            f"no real {organ} tumor in --real",
            "pass a dataset or folder with annotated real tumors",
        )
    if n_real < MIN_CASES_PER_ARM:
        raise EvaluationInputError(
            "--real",
            f"only {n_real} real {organ} tumor(s); the test needs >= {MIN_CASES_PER_ARM} per arm",
            "add real tumors",
        )
    for m in methods:
        n = sum(c.arm == "synthetic" and c.method == m for c in cases)
        if n < MIN_CASES_PER_ARM:
            raise EvaluationInputError(
                "--synthetic",
                f"only {n} synthetic {organ} tumor(s) of {m}; the "
                f"test needs >= {MIN_CASES_PER_ARM} per arm",
                "synthesize more tumors",
            )


def run_realism(
    cases: Sequence[RealismCase],
    features: pd.DataFrame,
    *,
    organ: str,
    spacing: Sequence[float],
    seed: int = 0,
    discriminators: Sequence[str] = DISCRIMINATORS,
    n_boot: int = N_BOOTSTRAP,
    n_perm: int = N_PERMUTATIONS,
    cnn_options: CnnOptions | None = None,
    top: int = TOP_FEATURES,
    log: Callable[[str], None] | None = None,
) -> RealismResult:
    """The machine Turing test of every method in ``cases`` against the real cases.

    ``features`` rows follow ``cases`` (:func:`case_features`). Returns the AUC table (one row
    per method x discriminator), the top separating features per method, the out-of-fold
    scores of every case and the case list.
    """
    from evaluation.frd import frechet_radiomics_distance

    methods = sorted({c.method for c in cases if c.arm == "synthetic"})
    check_arms(cases, organ, methods)
    unknown = set(discriminators) - set(DISCRIMINATORS)
    if unknown:
        raise ValueError(f"unknown discriminators {sorted(unknown)}; known {DISCRIMINATORS}")
    arm = np.array([c.arm for c in cases])
    method = np.array([c.method for c in cases])
    rows, tops, scores = [], [], []
    for m in methods:
        idx = np.flatnonzero((arm == "real") | (method == m))
        sub = [cases[int(i)] for i in idx]
        y = np.array([c.label for c in sub])
        groups = [c.volume for c in sub]
        folds = grouped_folds(y, groups, seed=seed)
        fold_of = np.empty(len(y), dtype=int)
        for k, (_, test) in enumerate(folds):
            fold_of[test] = k
        feats = features.iloc[idx].reset_index(drop=True)
        x = feature_array(feats)
        tcols = tumor_columns(feats)
        real_t, syn_t = feats.loc[y == 1, tcols], feats.loc[y == 0, tcols]
        frd = frechet_radiomics_distance(real_t, syn_t)
        base = {
            "method": m,
            "organ": organ,
            "n_real": int(y.sum()),
            "n_synthetic": int((1 - y).sum()),
            "n_volumes": len(set(groups)),
            "n_folds": len(folds),
            "frd": frd["frd"],
            "frd_n_features": frd["n_features"],
        }
        for d in discriminators:
            if log:
                log(f"{m}: {d} ({len(folds)} folds grouped by volume)")
            if d == "cnn":
                from evaluation.realism_cnn import cnn_oof_scores

                s = cnn_oof_scores(
                    np.stack([c.ct for c in sub]), y, folds, seed=seed, **(cnn_options or {})
                )
            else:
                s = oof_scores(x, y, folds, d, seed)
            a = auc(y, s)
            lo, hi = bootstrap_auc_ci(y, s, seed=seed, n_boot=n_boot)
            # no p-value for the CNN: a permutation test would retrain it n_perm times
            p = (
                permutation_p(x, y, folds, d, a, seed=seed, n_perm=n_perm)
                if d != "cnn" and n_perm
                else float("nan")
            )
            rows.append(
                {
                    **base,
                    "discriminator": d,
                    "auc": a,
                    "auc_ci_low": lo,
                    "auc_ci_high": hi,
                    "p_value": p,
                    "auc_within_fold": within_fold_auc(y, s, fold_of),
                }
            )
            scores.append(
                pd.DataFrame(
                    {
                        "method": m,
                        "discriminator": d,
                        "case": [c.case for c in sub],
                        "arm": [c.arm for c in sub],
                        "volume": [c.volume[:16] for c in sub],
                        "fold": fold_of,
                        "score": s,
                    }
                )
            )
        top_m = univariate_features(feats, y, top)
        top_m.insert(0, "organ", organ)
        top_m.insert(0, "method", m)
        tops.append(top_m)
    table = pd.DataFrame(rows)[list(TABLE_COLUMNS)]
    feature_table = (
        pd.concat(tops, ignore_index=True) if tops else pd.DataFrame(columns=FEATURE_COLUMNS)
    )[list(FEATURE_COLUMNS)]
    return RealismResult(
        table, feature_table, pd.concat(scores, ignore_index=True), case_table(cases)
    )


def conventions(
    spec: ExtractorSpec,
    presentation,
    *,
    seed: int,
    n_boot: int,
    n_perm: int,
    cnn: CnnOptions | None,
    min_lesion_ml: float,
    sources: str,
) -> dict[str, str]:
    """The conventions sidecar of the realism tables."""
    crop = presentation.crop
    out = {
        "sources": sources,
        "question": "can a classifier tell real tumors from synthetic ones? (machine Turing test)",
        "positive_class": "real tumor; score = 'looks real'",
        "chance": "AUC 0.5; lower is more realistic (AUC well below 0.5 is not 'more real', "
        "it is noise or anti-learning on few cases)",
        "cases": f"one case per connected lesion (26-connectivity) of >= {min_lesion_ml} mL; "
        "blinded crop exactly as studies.blinding exports study cases: spacing "
        f"{tuple(presentation.spacing_mm)} mm, box {crop.size} {crop.unit} centred on "
        "the lesion, linear interpolation, int16 HU clipped to [-1024, 3071]",
        "cross_validation": f"StratifiedGroupKFold (min(5, volumes, smaller arm) folds, shuffle, "
        f"random_state={seed}), groups = source CT volume (sha256): no "
        "volume in training and test; out-of-fold scores pooled into one "
        "AUC per method",
        "auc_ci": f"95% percentile bootstrap over cases resampled within arm, {n_boot} "
        f"replicates, seed {seed}",
        "auc_within_fold": "AUC over the real-synthetic pairs of the same test fold only (one "
        "model's scores), free of score-scale offsets between fold models; "
        "folds with one arm only do not count",
        "p_value": (
            f"one-sided label-permutation p-value of the cross-validated AUC ({n_perm} "
            "permutations, folds fixed; radiomics models only, not computed for the "
            "CNN)"
        )
        if n_perm
        else "not computed",
        "radiomics": f"pyradiomics on the crop: tumor ({', '.join(spec['classes'])}) + "
        f"{RIM_MM:g} mm rim outside it ({', '.join(rim_spec(spec)['classes'])}, "
        f"'rim_' prefix); settings {dict(spec['settings'])}",
        "radiomics-logreg": "SimpleImputer(median) + VarianceThreshold + StandardScaler + "
        "LogisticRegression(C=0.1, class_weight=balanced, liblinear)",
        "radiomics-svm": "SimpleImputer(median) + VarianceThreshold + StandardScaler + "
        "SVC(rbf, C=1, gamma=scale, class_weight=balanced)",
        "frd": "FRD = log(d^2) of the tumor features (not the rim), z-scored on the real set "
        "(evaluation.frd)",
        "top_features": "univariate AUC of each tumor/rim feature (in-sample, no model; > 0.5 "
        "= higher in real tumors), ranked by max(auc, 1 - auc); Mann-Whitney "
        "p uncorrected for the number of features",
    }
    if cnn is not None:
        from evaluation.realism_cnn import describe

        out["cnn"] = describe(**cnn)
    return out

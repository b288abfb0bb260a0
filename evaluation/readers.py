"""Reader statistics of a visual Turing test (real vs synthetic) and of organ-origin studies.

Conventions (stated in every table this module writes):

- **Real tumor = positive.** Sensitivity = P(answer real | real), specificity =
  P(answer synthetic | synthetic), "fooling rate" = 1 - specificity, accuracy = correct / answered.
- **Unsure answers**: ``unsure="exclude"`` (default, the seed documents' convention) drops them from
  every denominator; ``unsure="wrong"`` counts an unsure on a real case as a false negative and an
  unsure on a synthetic case as a false positive (the STARD 2015 sensitivity analysis). The unsure
  counts are always reported (``n_unsure_real``, ``n_unsure_synthetic``).
- Intervals: Wilson score 95% (``statsmodels.stats.proportion.proportion_confint(method="wilson")``).
  ``p_vs_chance``: two-sided exact binomial test of accuracy against 0.5 (``scipy.stats.binomtest``).
  A proportion with an empty denominator is NaN (and so are its interval and test).
- Methods: when a ``method`` column is present, each synthetic case belongs to its method; real
  cases whose method is blank or ``real`` are the shared controls and enter every method's row.
- ``organ = "all"`` rows pool every organ of a reader (and method).

Votes table columns: ``reader, case, organ, truth, answer`` (+ optional ``method``,
``confidence``); one row per reader x case.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from core.vocabulary import ANSWERS, ORGANS, ORIGIN_ANSWERS, QUESTIONS, Answer, Task
from evaluation.tables import EvaluationInputError

REQUIRED_COLUMNS = ("reader", "case", "organ", "truth", "answer")
TRUTHS = (Answer.REAL.value, Answer.SYNTHETIC.value)
UNSURE_MODES = ("exclude", "wrong")
ORIGIN_ORGANS = ORGANS
CONFIDENCE_RANGE = (1, 5)
SHARED_METHODS = ("", "real")
ALL = "all"

TABLE_COLUMNS = [
    "reader",
    "organ",
    "n_real",
    "n_synthetic",
    "n_unsure_real",
    "n_unsure_synthetic",
    "tp",
    "fn",
    "tn",
    "fp",
    "sensitivity",
    "sensitivity_low",
    "sensitivity_high",
    "specificity",
    "specificity_low",
    "specificity_high",
    "accuracy",
    "accuracy_low",
    "accuracy_high",
    "p_vs_chance",
    "p_fisher",
    "n_answered",
    "fooling_rate",
    "balanced_accuracy",
    "youden_j",
]
# `turingct study results` column names -> votes columns (the export reads back as votes)
EXPORT_ALIASES = {"code": "case", "arm": "truth", "seconds_on_case": "seconds"}


def conventions(unsure: str) -> dict[str, str]:
    """The conventions text for a reader table made with ``unsure``."""
    how = (
        "excluded from all denominators"
        if unsure == "exclude"
        else "counted as wrong (real->FN, synthetic->FP)"
    )
    return {
        "positive_class": "real tumor (sensitivity = P(real|real), specificity = "
        "P(synthetic|synthetic), fooling rate = 1 - specificity)",
        "unsure": f"{unsure}: {how}; n_unsure_* always reported",
        "intervals": "Wilson score 95% (statsmodels proportion_confint method='wilson')",
        "p_vs_chance": "two-sided exact binomial test of accuracy vs 0.5 (scipy binomtest); "
        "it mixes answer bias with discrimination when the arms are unequal",
        "p_fisher": "two-sided Fisher exact test of answer (real/synthetic) vs truth on the "
        "2x2 table tp,fn / fp,tn (scipy fisher_exact): can readers tell at all, "
        "whatever their bias",
        "methods": "real cases with blank/'real' method are shared controls of every method",
        "organ_all": "organ='all' rows pool every organ of the reader",
        "empty_denominator": "NaN",
        "n_answered": "real or synthetic answers (unsure answers not counted)",
        "fooling_rate": "1 - specificity = P(answer real | synthetic)",
        "balanced_accuracy": "(sensitivity + specificity) / 2; youden_j = sensitivity + "
        "specificity - 1 (0 = no discrimination, whatever the arm sizes)",
        "years_experience": "reader's years of experience when recorded",
    }


# ---------------------------------------------------------------- validation


def _fail(path, problem: str, fix: str):
    raise EvaluationInputError(path, problem, fix)


def validate_votes(
    df: pd.DataFrame, path: str | Path | None = None, *, task: str = "turing"
) -> pd.DataFrame:
    """Check and normalize a votes table; return a clean copy.

    ``task="turing"``: truth in {real, synthetic}, answer in {real, synthetic, unsure}.
    ``task="origin"``: the truth is the ``organ`` column; answer in {liver, pancreas, kidney,
    unsure}; no ``truth`` column needed. Labels are stripped and lower-cased; ``confidence``
    (optional) must be an integer 1-5 or blank. Raises :class:`EvaluationInputError` naming the
    file, the column, the first bad CSV line (header = line 1) and the fix.
    """
    required = REQUIRED_COLUMNS if task == Task.TURING else ("reader", "case", "organ", "answer")
    df = df.copy()
    df.columns = [str(c).strip().lower() for c in df.columns]
    df = _from_results_export(df, path, task)
    missing = [c for c in required if c not in df.columns]
    if missing:
        _fail(
            path,
            f"missing column(s) {', '.join(missing)} (found {', '.join(df.columns)})",
            f"the votes CSV needs columns {','.join(required)} (+ optional method,confidence)",
        )
    if df.empty:
        _fail(path, "has no vote rows", "export the votes again or pick another file")
    text_cols = list(required) + (["method"] if "method" in df.columns else [])
    for col in text_cols:
        values = df[col]
        blank = values.isna() | (values.astype(str).str.strip() == "")
        if col != "method" and blank.any():
            line = int(np.flatnonzero(blank.to_numpy())[0]) + 2
            _fail(path, f"column {col} is empty on line {line}", f"fill in {col} on every row")
        df[col] = values.fillna("").astype(str).str.strip()
        if col not in ("reader", "case"):
            df[col] = df[col].str.lower()
    allowed = (
        {"truth": TRUTHS, "answer": ANSWERS}
        if task == Task.TURING
        else {"organ": ORIGIN_ORGANS, "answer": ORIGIN_ANSWERS}
    )
    for col, ok in allowed.items():
        bad = ~df[col].isin(ok)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            _fail(
                path,
                f"column {col} must be one of {'/'.join(ok)}, got {df[col].iloc[i]!r} "
                f"on line {i + 2}",
                "fix that value (or drop the row)",
            )
    if "confidence" in df.columns:
        conf = pd.to_numeric(df["confidence"], errors="coerce")
        lo, hi = CONFIDENCE_RANGE
        bad = (df["confidence"].notna() & conf.isna()) | (
            conf.notna() & ((conf < lo) | (conf > hi) | (conf != np.round(conf)))
        )
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            _fail(
                path,
                f"column confidence must be an integer {lo}-{hi} or blank, got "
                f"{df['confidence'].iloc[i]!r} on line {i + 2}",
                "fix that value",
            )
        df["confidence"] = conf.astype("Int64")
    dup = df.duplicated(["reader", "case"], keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        _fail(
            path,
            f"reader {df['reader'].iloc[i]!r} answered case {df['case'].iloc[i]!r} twice "
            f"(line {i + 2})",
            "keep one answer per reader and case",
        )
    if task == Task.TURING:
        per_case = df.groupby("case")["truth"].nunique()
        if (per_case > 1).any():
            case = per_case[per_case > 1].index[0]
            _fail(
                path,
                f"case {case!r} has different truth values on different rows",
                "each case is either real or synthetic; fix the truth column",
            )
    return df.reset_index(drop=True)


def _from_results_export(df: pd.DataFrame, path, task: str) -> pd.DataFrame:
    """Accept the CSV of `turingct study results`: ``code``/``arm``/``seconds_on_case`` are
    ``case``/``truth``/``seconds``, and a ``question`` column keeps this task's answers only."""
    renames = {
        old: new
        for old, new in EXPORT_ALIASES.items()
        if old in df.columns and new not in df.columns
    }
    if task == Task.ORIGIN:
        renames.pop("arm", None)
    df = df.rename(columns=renames)
    if "arm" in df.columns and task == Task.ORIGIN:
        df = df.drop(columns="arm")
    if "question" in df.columns:
        question = QUESTIONS[task]
        df = df[df["question"].astype(str).str.strip().str.lower() == question]
        if df.empty:
            _fail(
                path,
                f"has no answers to the {question!r} question",
                "export a study of this design, or use the matching evaluate command",
            )
        df = df.drop(columns="question")
    return df


def read_votes(path: str | Path, *, task: str = "turing") -> pd.DataFrame:
    """Read and validate a votes CSV (see :func:`validate_votes`)."""
    path = Path(path)
    if not path.is_file():
        _fail(path, "file does not exist", "check the path to the votes CSV")
    _check_row_lengths(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""], index_col=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        _fail(
            path,
            f"is not a readable CSV ({exc.__class__.__name__}: {exc})",
            "save the votes as comma-separated UTF-8 text with a header line",
        )
    return validate_votes(df, path, task=task)


def _check_row_lengths(path: Path) -> None:
    """Refuse rows with more fields than the header (pandas would shift or drop them)."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = csv.reader(handle)
            header = next(rows, [])
            for line, row in enumerate(rows, start=2):
                if len(row) > len(header):
                    _fail(
                        path,
                        f"line {line} has {len(row)} fields but the header has {len(header)}",
                        "remove the extra commas or quote the value",
                    )
    except UnicodeDecodeError:
        return  # reported by the CSV reader below with the usual message


# ---------------------------------------------------------------- statistics


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for ``successes / n``; ``(nan, nan)`` when ``n == 0``."""
    from statsmodels.stats.proportion import proportion_confint

    if n == 0:
        return float("nan"), float("nan")
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(low), float(high)


def binomial_p(successes: int, n: int, p: float = 0.5) -> float:
    """Two-sided exact binomial test p-value of ``successes / n`` against ``p``."""
    from scipy.stats import binomtest

    return float("nan") if n == 0 else float(binomtest(successes, n, p).pvalue)


def confusion_counts(
    truth: Iterable[str], answer: Iterable[str], unsure: str = "exclude"
) -> dict[str, int]:
    """Counts of the 3x2 table collapsed to TP/FN/TN/FP under the unsure convention."""
    if unsure not in UNSURE_MODES:
        raise ValueError(f"unsure must be one of {UNSURE_MODES}, got {unsure!r}")
    t = np.asarray(list(truth))
    a = np.asarray(list(answer))
    real, syn = t == Answer.REAL, t == Answer.SYNTHETIC
    counts = {
        "n_real": int(real.sum()),
        "n_synthetic": int(syn.sum()),
        "n_unsure_real": int((real & (a == Answer.UNSURE)).sum()),
        "n_unsure_synthetic": int((syn & (a == Answer.UNSURE)).sum()),
        "tp": int((real & (a == Answer.REAL)).sum()),
        "fn": int((real & (a == Answer.SYNTHETIC)).sum()),
        "tn": int((syn & (a == Answer.SYNTHETIC)).sum()),
        "fp": int((syn & (a == Answer.REAL)).sum()),
    }
    if unsure == "wrong":
        counts["fn"] += counts["n_unsure_real"]
        counts["fp"] += counts["n_unsure_synthetic"]
    return counts


def metrics_from_counts(c: dict[str, int]) -> dict[str, float]:
    """Sensitivity, specificity, accuracy with Wilson intervals and the binomial p-value."""
    out: dict[str, float] = {}
    for name, k, n in (
        ("sensitivity", c["tp"], c["tp"] + c["fn"]),
        ("specificity", c["tn"], c["tn"] + c["fp"]),
        ("accuracy", c["tp"] + c["tn"], c["tp"] + c["fn"] + c["tn"] + c["fp"]),
    ):
        out[name] = k / n if n else float("nan")
        out[f"{name}_low"], out[f"{name}_high"] = wilson_interval(k, n)
    n_acc = c["tp"] + c["fn"] + c["tn"] + c["fp"]
    out["p_vs_chance"] = binomial_p(c["tp"] + c["tn"], n_acc)
    out["p_fisher"] = fisher_p(c)
    return out


def fisher_p(c: dict[str, int]) -> float:
    """Two-sided Fisher exact p of answer vs truth on ``[[tp, fn], [fp, tn]]``; NaN if empty.

    Unlike the binomial test of accuracy against 0.5, it does not reward a reader who calls
    everything "real" when real cases outnumber synthetic ones (unsure answers excluded can make
    the arms unequal): it asks whether the answer depends on the truth at all.
    """
    from scipy.stats import fisher_exact

    table = [[c["tp"], c["fn"]], [c["fp"], c["tn"]]]
    if sum(map(sum, table)) == 0:
        return float("nan")
    return float(fisher_exact(table).pvalue)


def _method_groups(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Split by method; shared real controls (blank/'real' method) join every method.

    A synthetic case with a blank method is grouped as method ``unspecified``.
    """
    is_shared = (df["truth"] == Answer.REAL) & df["method"].isin(SHARED_METHODS)
    method = df["method"].where(~df["method"].isin(SHARED_METHODS), "unspecified")
    shared, named = df[is_shared], df[~is_shared]
    groups = []
    for m in sorted(set(method[~is_shared])):
        groups.append((m, pd.concat([shared, named[method[~is_shared] == m]])))
    return groups


def reader_table(votes: pd.DataFrame, unsure: str = "exclude") -> pd.DataFrame:
    """One row per reader x organ (x method when present) plus organ='all' rows.

    ``votes`` must be validated (:func:`validate_votes`). Columns: :data:`TABLE_COLUMNS`, with
    ``method`` inserted after ``reader`` when the votes have a method column, and
    ``years_experience`` after ``reader`` when the votes carry it. Rows are sorted by
    reader, method, organ with ``all`` last within each reader (and method).
    """
    if unsure not in UNSURE_MODES:
        raise ValueError(f"unsure must be one of {UNSURE_MODES}, got {unsure!r}")
    # a method column with no method named anywhere (e.g. all blank) adds nothing: ignore it
    has_method = "method" in votes.columns and bool((~votes["method"].isin(SHARED_METHODS)).any())
    has_experience = "years_experience" in votes.columns and votes["years_experience"].notna().any()
    experience = {}
    if has_experience:
        years = pd.to_numeric(votes["years_experience"], errors="coerce")
        experience = years.groupby(votes["reader"]).first().to_dict()
    rows = []
    for reader, rv in votes.groupby("reader", sort=True):
        groups = _method_groups(rv) if has_method else [(None, rv)]
        for method, mv in groups:
            organs = [*sorted(mv["organ"].unique()), ALL]
            for organ in organs:
                part = mv if organ == ALL else mv[mv["organ"] == organ]
                counts = confusion_counts(part["truth"], part["answer"], unsure)
                row = {
                    "reader": reader,
                    "organ": organ,
                    **counts,
                    **metrics_from_counts(counts),
                    "n_answered": int(part["answer"].isin(TRUTHS).sum()),
                }
                row["fooling_rate"] = 1.0 - row["specificity"]
                row["balanced_accuracy"] = (row["sensitivity"] + row["specificity"]) / 2
                row["youden_j"] = row["sensitivity"] + row["specificity"] - 1.0
                if has_method:
                    row["method"] = method
                if has_experience:
                    row["years_experience"] = experience.get(reader)
                rows.append(row)
    columns = list(TABLE_COLUMNS)
    if has_method:
        columns.insert(1, "method")
    if has_experience:
        columns.insert(1, "years_experience")
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------- organ origin


def organ_origin_confusion(votes: pd.DataFrame, reader: str) -> pd.DataFrame:
    """Confusion matrix of one reader: rows = true organ, columns = answer (organs + unsure)."""
    from sklearn.metrics import confusion_matrix

    rv = votes[votes["reader"] == reader]
    labels = list(ORIGIN_ANSWERS)
    cm = confusion_matrix(rv["organ"], rv["answer"], labels=labels)
    return pd.DataFrame(
        cm[: len(ORIGIN_ORGANS)],
        index=pd.Index(ORIGIN_ORGANS, name="truth"),
        columns=pd.Index(labels, name="answer"),
    )


def organ_origin_table(votes: pd.DataFrame) -> pd.DataFrame:
    """Per reader x organ precision and recall of organ-origin guesses (+ macro rows).

    Validate with ``validate_votes(..., task="origin")``. Unsure answers count as wrong for
    recall (the case was not attributed to its organ) and are never a prediction of any organ,
    so they do not lower precision; ``n_unsure`` is reported. Precision of an organ never
    predicted is 0 (scikit-learn ``zero_division=0``), the same rule as the SVM's
    (:func:`evaluation.radiomics.svm_organ_origin`). ``organ = "macro"`` rows average the organs
    that occur as truth or answer (chance level = 1/3 for balanced studies).
    """
    from sklearn.metrics import precision_recall_fscore_support

    rows = []
    for reader, rv in votes.groupby("reader", sort=True):
        p, r, _, support = precision_recall_fscore_support(
            rv["organ"], rv["answer"], labels=list(ORIGIN_ORGANS), zero_division=0
        )
        for organ, pi, ri, si in zip(ORIGIN_ORGANS, p, r, support, strict=True):
            n_unsure = int(((rv["organ"] == organ) & (rv["answer"] == Answer.UNSURE)).sum())
            rows.append(
                {
                    "reader": reader,
                    "organ": organ,
                    "n": int(si),
                    "n_unsure": n_unsure,
                    "precision": float(pi),
                    "recall": float(ri),
                }
            )
        # macro over the organs that occur (as truth or answer), like the SVM's
        # precision_score(average="macro", zero_division=0)
        present = [
            o for o in ORIGIN_ORGANS if (rv["organ"] == o).any() or (rv["answer"] == o).any()
        ]
        mp, mr, _, _ = precision_recall_fscore_support(
            rv["organ"], rv["answer"], labels=present, average="macro", zero_division=0
        )
        rows.append(
            {
                "reader": reader,
                "organ": "macro",
                "n": int(len(rv)),
                "n_unsure": int((rv["answer"] == Answer.UNSURE).sum()),
                "precision": float(mp),
                "recall": float(mr),
            }
        )
    return pd.DataFrame(rows, columns=["reader", "organ", "n", "n_unsure", "precision", "recall"])


def realness_score(answer: pd.Series, confidence: pd.Series | None = None) -> np.ndarray:
    """Ordinal "realness" score: ``+c`` for answer real with confidence c, ``-c`` for synthetic,
    0 for unsure. Without confidence (or where blank) c = 1, which reduces to the binary answer.

    The score orders a reader's belief from "surely synthetic" (-5) to "surely real" (+5), so
    an ROC curve over it is the confidence-rating ROC of classic observer studies.
    """
    sign = answer.map({Answer.REAL: 1.0, Answer.SYNTHETIC: -1.0, Answer.UNSURE: 0.0}).to_numpy(
        dtype=float
    )
    if confidence is None:
        return sign
    conf = pd.to_numeric(confidence, errors="coerce").fillna(1.0).to_numpy(dtype=float)
    return sign * conf


ORIGIN_CONVENTIONS = {
    "task": "organ origin (liver / pancreas / kidney); truth = organ column",
    "unsure": "never a prediction of an organ (does not lower precision); counts as a miss "
    "for recall; n_unsure reported",
    "precision_no_predictions": "0 (an organ never predicted has precision 0), the same rule "
    "for readers and the SVM (scikit-learn zero_division=0)",
    "macro": "unweighted mean over the organs that occur (truth or answer), as scikit-learn's "
    "average='macro' for the SVM; chance = 1/3 when balanced",
}

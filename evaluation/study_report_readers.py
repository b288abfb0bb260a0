"""The reader sections of a Turing-test study report: what a paper's results section shows.

For one study's votes: the reader table under both unsure conventions (the seed documents'
"excluded" and the STARD sensitivity analysis "counted wrong"), each also in the Table-3 layout
(metric rows x organ columns, per reader), pooled results per organ x method with a
reader/case-clustered bootstrap, the MRMC ROC analysis, per-reader AUC with DeLong intervals when
confidence was asked, agreement (Cohen's kappa per pair with CI, Fleiss' kappa with bootstrap
CI), McNemar per reader pair and the method comparison (GEE odds ratios). Every table carries
its own conventions. Figures come from :mod:`evaluation.figures`.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from evaluation.readers import UNSURE_MODES


def add_turing_parts(parts, votes: pd.DataFrame, study, unsure: str, n_boot: int) -> None:
    """Add every Turing-test reader table and figure to ``parts`` (a ``ReportParts``)."""
    from evaluation import agreement, figures, readers, table3
    from evaluation.study_mrmc import add_report_parts

    other = next(m for m in UNSURE_MODES if m != unsure)
    for mode, suffix in ((unsure, ""), (other, f"_unsure_{other}")):
        table = readers.reader_table(votes, unsure=mode)
        conv = readers.conventions(mode)
        if suffix:
            conv = {"role": "sensitivity analysis of the unsure convention", **conv}
        parts.add(f"reader_table{suffix}", table, conv)
        wide = table3.table3_layout(table)
        parts.add(
            f"table3{suffix}",
            wide,
            {
                "layout": "Table 3: metric rows x organ columns per reader (and method); 'all' "
                "pools the reader's organs",
                "values": "proportions in [0, 1] in the CSV (full precision), percent in the HTML; "
                "n_* rows are counts",
                **conv,
            },
        )
        parts.html[f"table3{suffix}"] = table3.table3_html(wide)
        if not suffix:
            parts.figures += [
                figures.reader_table_figure(table, mode),
                figures.specificity_forest(table),
            ]
    pooled = table3.pooled_by_group(votes, n_boot=n_boot, seed=study.seed, unsure=unsure)
    parts.add(
        "pooled_bootstrap",
        pooled,
        {
            "groups": "per organ x method (a method = its synthetic cases + the shared real cases); "
            "'all' pools organs or methods",
            "bootstrap": "two-way: readers resampled, cases resampled within truth class; "
            f"percentile 95% interval, {n_boot} replicates, seed {study.seed} (+ group)",
            "unsure": unsure,
        },
    )
    add_report_parts(parts, votes, f"study {study.name}")
    if "confidence" in votes.columns and votes["confidence"].notna().any():
        parts.add(
            "reader_auc",
            agreement.reader_auc(votes),
            {
                "score": "realness = +confidence (real), -confidence (synthetic), 0 (unsure)",
                "auc": "empirical ROC AUC, real tumor = positive; DeLong SE, Wald 95% interval "
                "clipped to [0, 1]",
            },
        )
    _method_parts(parts, votes, unsure)
    if votes["reader"].nunique() >= 2:
        _agreement_parts(parts, votes, study.seed, n_boot)


def _method_parts(parts, votes: pd.DataFrame, unsure: str) -> None:
    from evaluation.comparisons import CONVENTIONS, method_comparison
    from evaluation.readers import SHARED_METHODS

    if "method" not in votes.columns or votes["method"].isin(SHARED_METHODS).all():
        return
    parts.add(
        "method_comparison",
        method_comparison(votes, unsure=unsure),
        {**CONVENTIONS, "unsure": unsure},
    )


def _agreement_parts(parts, votes: pd.DataFrame, seed: int, n_boot: int) -> None:
    from evaluation import agreement, figures

    pairs = agreement.pairwise_cohen_kappa(votes)
    fleiss = agreement.fleiss_kappa_ci(votes, n_boot=n_boot, seed=seed)
    pairs["fleiss_kappa_all_readers"], pairs["fleiss_n_cases"] = fleiss["kappa"], fleiss["n_cases"]
    pairs["fleiss_low"], pairs["fleiss_high"] = fleiss["low"], fleiss["high"]
    parts.add(
        "agreement",
        pairs,
        {
            "kappa": "sklearn cohen_kappa_score (unweighted) per reader pair over shared cases; "
            "unsure = its own category; 95% CI from statsmodels cohens_kappa asymptotic SE",
            "fleiss": "statsmodels fleiss_kappa over cases answered by every reader; 95% percentile "
            f"bootstrap over those cases ({n_boot} replicates, seed {seed})",
        },
    )
    parts.figures.append(figures.agreement_heatmap(agreement.kappa_matrix(pairs)))
    rows = []
    for a, b in combinations(sorted(votes["reader"].unique()), 2):
        res = agreement.mcnemar_readers(votes, a, b)
        rows.append({"reader_a": a, "reader_b": b, **res})
    parts.add(
        "mcnemar_readers",
        pd.DataFrame(rows),
        {
            "test": "McNemar exact (statsmodels) on the cases both readers answered: is one reader "
            "right more often than the other on the same cases",
            "unsure": "counted wrong (a paired test cannot drop one side of a pair)",
        },
    )

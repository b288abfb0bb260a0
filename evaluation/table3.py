"""Paper layouts of the reader results: Table 3 (metric rows x organ columns, per reader) and
pooled results per organ and per method.

Table 3 of the book chapter lists, per reader, sensitivity / specificity / accuracy as rows and
the organs as columns; here the unsure counts and the number answered sit in rows next to them
(STARD: report the unsure answers next to every figure). Values are proportions in [0, 1] at
full precision in the CSV; the HTML shows percent with one decimal.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.vocabulary import Answer

METRIC_ROWS = (
    "sensitivity",
    "specificity",
    "accuracy",
    "n_answered",
    "n_unsure_real",
    "n_unsure_synthetic",
)
PROPORTIONS = ("sensitivity", "specificity", "accuracy")


def table3_layout(table: pd.DataFrame) -> pd.DataFrame:
    """Reshape a :func:`evaluation.readers.reader_table` to rows ``reader [, method], metric``
    and one column per organ (``all`` last). Proportions stay in [0, 1]."""
    keys = ["reader", *(["method"] if "method" in table.columns else [])]
    organs = [o for o in pd.unique(table["organ"]) if o != "all"] + ["all"]
    long = table.melt(id_vars=[*keys, "organ"], value_vars=list(METRIC_ROWS), var_name="metric")
    wide = long.pivot_table(
        index=[*keys, "metric"], columns="organ", values="value", aggfunc="first", sort=False
    )
    wide = wide.reindex(columns=[o for o in organs if o in wide.columns])
    order = {m: i for i, m in enumerate(METRIC_ROWS)}
    wide = wide.reset_index()
    wide["_order"] = wide["metric"].map(order)
    wide = wide.sort_values([*keys, "_order"], kind="stable").drop(columns="_order")
    wide.columns.name = None
    return wide.reset_index(drop=True)


def table3_html(wide: pd.DataFrame) -> str:
    """The Table-3 layout as an HTML table: percent with one decimal, counts as integers."""
    shown = wide.copy()
    organ_cols = [c for c in shown.columns if c not in ("reader", "method", "metric")]
    for col in organ_cols:
        shown[col] = [
            "n/a"
            if not np.isfinite(v)
            else (f"{100 * v:.1f}%" if m in PROPORTIONS else f"{int(v)}")
            for v, m in zip(shown[col].astype(float), shown["metric"], strict=True)
        ]
    return shown.to_html(index=False, classes="data", border=0, escape=True)


POOLED_COLUMNS = [
    "organ",
    "method",
    "statistic",
    "estimate",
    "low",
    "high",
    "n_readers",
    "n_cases",
    "n_boot",
]


def pooled_by_group(
    votes: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, unsure: str = "exclude"
) -> pd.DataFrame:
    """Reader/case-clustered bootstrap of pooled accuracy, sensitivity and specificity per
    organ x method (plus ``all`` for each), so that methods and organs are not mixed.

    A method's rows use its synthetic cases and the shared real cases (blank or ``real``
    method). Each group gets its own generator seeded from ``seed`` and the group's position,
    so adding a group does not change the others' intervals.
    """
    from evaluation.agreement import STATISTICS, cluster_bootstrap
    from evaluation.readers import SHARED_METHODS

    has_method = "method" in votes.columns and (~votes["method"].isin(SHARED_METHODS)).any()
    methods = (
        sorted(set(votes.loc[~votes["method"].isin(SHARED_METHODS), "method"]))
        if has_method
        else []
    )
    organs = [*sorted(votes["organ"].unique()), "all"]
    shared = (
        votes["method"].isin(SHARED_METHODS) & (votes["truth"] == Answer.REAL)
        if has_method
        else pd.Series(True, index=votes.index)
    )
    rows = []
    group = 0
    for organ in organs:
        by_organ = votes if organ == "all" else votes[votes["organ"] == organ]
        for method in [*methods, "all"]:
            part = (
                by_organ
                if method == "all"
                else by_organ[shared.loc[by_organ.index] | (by_organ["method"] == method)]
            )
            group += 1
            if part["truth"].nunique() < 1 or part.empty:
                continue
            for statistic in STATISTICS:
                res = cluster_bootstrap(
                    part, statistic, n_boot=n_boot, seed=seed * 1000 + group, unsure=unsure
                )
                rows.append({"organ": organ, "method": method, "statistic": statistic, **res})
    return pd.DataFrame(rows, columns=POOLED_COLUMNS)

"""Dashboard section: the machine Turing test (stored ``turingct evaluate realism`` results).

Shows, for the study picked on the dashboard, the realism results attached to it and the
newest pre-screens of its organs (:func:`evaluation.realism_report.study_realism`): the AUC
forest plot, the table, and beside it the features that give each method away. No metric is
computed here.
"""

from __future__ import annotations

import shlex

import streamlit as st

from evaluation.realism_report import RealismStored, auc_forest, study_realism

TABLE_COLUMNS = [
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
    "frd",
]
FEATURE_COLUMNS = ["method", "rank", "region", "feature", "auc", "higher_in"]


def load(session, study_id: int) -> list[RealismStored]:
    """Plain records for the page (call through ``admin_ui.staff_call``)."""
    return study_realism(session, study_id)


def cli_hint(study: str) -> str:
    return (
        "turingct evaluate realism --real DATASET_OR_DIR --synthetic DIR_OR_METHOD ... "
        f"--organ ORGAN --store --for-study {shlex.quote(study)}"
    )


def show_realism(results: list[RealismStored], study: str) -> None:
    if not results:
        st.info(
            "No machine Turing test stored for this study or its organs yet. Run it "
            f"with\n\n`{cli_hint(study)}`"
        )
        return
    for i, r in enumerate(results):
        if r.table.empty:
            continue
        st.plotly_chart(auc_forest(r.table, r.name), key=f"dash_realism_{i}")
        left, right = st.columns([3, 2])
        with left:
            st.markdown(
                "**AUC real vs synthetic** (cross-validated, grouped by volume; "
                "0.5 = chance, lower = more realistic)"
            )
            st.dataframe(
                r.table[[c for c in TABLE_COLUMNS if c in r.table.columns]],
                hide_index=True,
                width="stretch",
            )
        with right:
            st.markdown(
                "**Which features give a method away** (univariate AUC; > 0.5 = "
                "higher in real tumors)"
            )
            if r.features.empty:
                st.caption("no feature separates the arms")
            else:
                st.dataframe(
                    r.features[[c for c in FEATURE_COLUMNS if c in r.features.columns]],
                    hide_index=True,
                    width="stretch",
                )
        with st.expander("Conventions of the machine Turing test"):
            st.markdown("\n".join(f"- **{k}**: {v}" for k, v in r.conventions.items()))
        st.caption(r.caption)

"""Dashboard (researchers): one study's reader metrics, stored model metrics and its report.

Reader metrics come from :mod:`evaluation` (pure functions) over the study's answers; FID/FRD,
DSC/NSD and radiomics come from results stored with ``turingct evaluate ... --store`` (a hint
with the exact command replaces each missing one); figures are :mod:`evaluation.figures`.
This page only picks the study and the conventions.
"""

from __future__ import annotations

import streamlit as st

from app import admin_ui, safe_text, state
from app.secure_download import secure_download
from core.vocabulary import Task

login = state.require_login(*state.RESEARCH_ROLES)

st.title("Dashboard")
try:
    from app import dashboard_ui
    from evaluation import agreement, figures
    from evaluation.study_stats import study_reader_statistics, task_for_design
    from evaluation.tables import EvaluationInputError
except ImportError as exc:  # the evaluation layer is optional for a reading-only deployment
    safe_text.warning(
        f"The evaluation layer is not available ({exc}); reader metrics cannot be shown."
    )
    st.stop()

study = admin_ui.study_picker(login, key="turingct_dash_study")
if study is None:
    st.stop()
task = task_for_design(study.design)
unsure = st.radio(
    "Unsure answers",
    ["exclude", "wrong"],
    horizontal=True,
    key="turingct_dash_unsure",
    help="exclude: unsure answers are left out; wrong: counted as errors",
)

st.header("Readers")
stats = None
try:
    stats = admin_ui.staff_call(
        login, study_reader_statistics, str(study.id), study.design, unsure=unsure
    )
except EvaluationInputError as exc:
    safe_text.info(exc)
if stats is not None:
    votes, table = stats.votes, stats.table
    if task == Task.TURING:
        st.plotly_chart(figures.reader_table_figure(table, unsure=unsure), key="dash_table")
        with st.expander("Conventions of the reader table"):
            st.markdown("\n".join(f"- **{k}**: {v}" for k, v in stats.conventions.items()))
        st.plotly_chart(figures.specificity_forest(table), key="dash_forest")
        dashboard_ui.show_mrmc(votes)
    else:
        st.dataframe(table, hide_index=True, height="content")
    if votes["reader"].nunique() > 1:
        kappa = agreement.kappa_matrix(agreement.pairwise_cohen_kappa(votes))
        st.plotly_chart(figures.agreement_heatmap(kappa), key="dash_kappa")
    st.plotly_chart(figures.time_per_case_box(votes), key="dash_time")

stored = admin_ui.staff_call(login, dashboard_ui.load_stored, study.id)
st.header("Distribution distances")
dashboard_ui.show_fid(stored, study.name)
dashboard_ui.show_frd(stored, study.name)
st.header("Segmentation")
dashboard_ui.show_seg(stored, study.name)
st.header("Radiomics organ origin")
dashboard_ui.show_radiomics(stored, study.name)
st.header("Machine Turing test")
from app import realism_ui  # noqa: E402  (the evaluation layer is optional, checked above)

realism_ui.show_realism(admin_ui.staff_call(login, realism_ui.load, study.id), study.name)

st.divider()
study_id = study.id
# The report holds the unblinding key: built on click and handed to this browser only (an
# st.download_button would leave it at an unauthenticated /media/ URL; app.secure_download).
secure_download(
    "Download report",
    lambda: admin_ui.staff_call(login, dashboard_ui.report_html, study_id, unsure),
    file_name=f"{study.name}-report.html",
    mime="text/html",
    key="turingct_dash_report",
    help="Self-contained HTML as `turingct report` writes it: settings, provenance, audit, "
    "every table and figure, and the unblinding key (researchers only).",
)

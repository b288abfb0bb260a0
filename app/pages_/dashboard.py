"""Dashboard (researchers): reader metrics per reader x organ, agreement and time per case.

Metrics come from :mod:`evaluation` (pure functions) and figures from
:mod:`evaluation.figures`; this page only picks the study and the conventions.
"""

from __future__ import annotations

import streamlit as st

from app import admin_ui, state

login = state.require_login(*state.RESEARCH_ROLES)

st.title("Dashboard")
try:
    from evaluation import agreement, figures, readers
    from evaluation.study_data import study_votes
    from evaluation.tables import EvaluationInputError
except ImportError as exc:  # the evaluation layer is optional for a reading-only deployment
    st.warning(f"The evaluation layer is not available ({exc}); reader metrics cannot be shown.")
    st.stop()

study = admin_ui.study_picker(login, key="turingct_dash_study")
if study is None:
    st.stop()
task = "turing" if study.design == "turing" else "origin"
unsure = st.radio("Unsure answers", ["exclude", "wrong"], horizontal=True,
                  key="turingct_dash_unsure",
                  help="exclude: unsure answers are left out; wrong: counted as errors")
try:
    with state.db_session() as session:
        admin_ui.require_staff(session, login)
        votes = study_votes(session, str(study.id), task=task)
except EvaluationInputError as exc:
    st.info(str(exc))
    st.stop()

if task == "turing":
    table = readers.reader_table(votes, unsure=unsure)
    st.plotly_chart(figures.reader_table_figure(table, unsure=unsure), key="dash_table")
    st.plotly_chart(figures.specificity_forest(table), key="dash_forest")
else:
    st.dataframe(readers.organ_origin_table(votes), hide_index=True)
if votes["reader"].nunique() > 1:
    kappa = agreement.kappa_matrix(agreement.pairwise_cohen_kappa(votes))
    st.plotly_chart(figures.agreement_heatmap(kappa), key="dash_kappa")
st.plotly_chart(figures.time_per_case_box(votes), key="dash_time")

"""Stored machine-Turing-test results for the study report and the dashboard.

A realism result (kind ``realism``, written by ``turingct evaluate realism --store``) belongs to
a study when stored with ``--for-study``; otherwise it is a pre-screen of methods for an organ.
A study's report and dashboard show both: the results attached to the study, and the newest
unattached ones whose organ is one of the study's organs. The session is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

KIND = "realism"


@dataclass(frozen=True)
class RealismStored:
    """One stored realism result, detached from the database."""

    id: int
    name: str
    organ: str
    attached: bool
    created_at: str
    code_version: str
    conventions: dict[str, Any]
    table: pd.DataFrame = field(repr=False)
    features: pd.DataFrame = field(repr=False)

    @property
    def caption(self) -> str:
        where = "this study" if self.attached else "pre-screen, not tied to a study"
        return (
            f"realism result {self.id} '{self.name}' ({where}), stored {self.created_at} "
            f"UTC, code {self.code_version}"
        )


def study_realism(session, study_id: int) -> list[RealismStored]:
    """Realism results for a study (see the module docstring), attached ones first."""
    from db.models import Study
    from evaluation.store import latest_results, result_tables

    study = session.get(Study, study_id)
    organs = set((study.spec or {}).get("organs", [])) if study is not None else set()
    out = []
    for row in latest_results(session, kind=KIND):
        organ = str((row.params or {}).get("organ", ""))
        attached = row.study_id == study_id
        if not attached and (row.study_id is not None or organ not in organs):
            continue
        tables = result_tables(row)
        out.append(
            RealismStored(
                row.id,
                row.name,
                organ,
                attached,
                f"{row.created_at:%Y-%m-%d %H:%M}",
                row.code_version,
                dict((row.result or {}).get("conventions", {})),
                tables.get("realism", pd.DataFrame()),
                tables.get("realism_features", pd.DataFrame()),
            )
        )
    return sorted(out, key=lambda r: (not r.attached, r.organ, r.name))


def auc_forest(table: pd.DataFrame, title: str = "Machine Turing test"):
    """AUC with its 95% CI per method x discriminator; chance (0.5) marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for disc, part in table.groupby("discriminator", sort=True):
        fig.add_trace(
            go.Scatter(
                x=part.auc,
                y=[f"{m} ({o})" for m, o in zip(part.method, part.organ, strict=True)],
                mode="markers",
                name=str(disc),
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": (part.auc_ci_high - part.auc).tolist(),
                    "arrayminus": (part.auc - part.auc_ci_low).tolist(),
                },
            )
        )
    fig.add_vline(x=0.5, line_dash="dash", annotation_text="chance")
    fig.update_layout(
        title=f"{title}: AUC real vs synthetic (0.5 = chance, lower = more realistic)",
        xaxis_title="cross-validated AUC [95% CI]",
        xaxis_range=[0, 1],
    )
    return fig


def add_to_report(parts, session, study_id: int) -> None:
    """Add the realism figures (and the tables of unattached results, which the generic stored
    section does not list) to a :class:`evaluation.study_report.ReportParts`."""
    from evaluation.tables import table_slug

    for r in study_realism(session, study_id):
        if r.table.empty:
            continue
        if not r.attached:  # attached results' tables are already in the stored section
            conv = {**r.conventions, "stored": r.caption}
            parts.add(table_slug(f"realism_{r.name}"), r.table, conv)
            if not r.features.empty:
                parts.add(table_slug(f"realism_{r.name}_features"), r.features, conv)
        parts.figures.append(auc_forest(r.table, r.name))

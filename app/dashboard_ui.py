"""Dashboard sections drawn from stored evaluation results, and the study report download.

Stored results (``evaluation.store``: one ``EvaluationResult`` row per computed table) are read
once per page run as plain :class:`StoredResult` records; each section turns them into the
plotly figures of :mod:`evaluation.figures` (no metric is computed here) or, when a kind has not
been stored for the study yet, shows the exact CLI command that produces it.
"""

from __future__ import annotations

import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st


@dataclass(frozen=True)
class StoredResult:
    """The newest stored result of one ``(kind, name)`` of a study, detached from the db."""

    id: int
    kind: str
    name: str
    created_at: str
    code_version: str
    params: dict[str, Any]
    conventions: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(repr=False)

    @property
    def caption(self) -> str:
        return (
            f"{self.kind} result {self.id} '{self.name}', stored {self.created_at} UTC, "
            f"code {self.code_version}"
        )


def load_stored(session, study_id: int) -> list[StoredResult]:
    """Latest stored result per ``(kind, name)`` attached to study ``study_id`` (no role check:
    call through ``admin_ui.staff_call``)."""
    from evaluation.store import latest_results, result_tables

    return [
        StoredResult(
            row.id,
            row.kind,
            row.name,
            f"{row.created_at:%Y-%m-%d %H:%M}",
            row.code_version,
            dict(row.params or {}),
            dict((row.result or {}).get("conventions", {})),
            result_tables(row),
        )
        for row in latest_results(session, study=study_id)
    ]


def cli_hints(study: str) -> dict[str, str]:
    """kind -> the command that computes and stores that kind of result for ``study``."""
    s = shlex.quote(study)
    return {
        "fid": f"turingct evaluate fid --real REAL_DIR --synthetic SYNTHETIC_DIR --store "
        f"--for-study {s}",
        "frd": f"turingct evaluate frd --cases cases.csv --store --for-study {s}",
        "seg": f"turingct evaluate seg --pred PRED_DIR --truth TRUTH_DIR --tolerance-mm 2 "
        f"--store --for-study {s}",
        "radiomics": f"turingct evaluate radiomics --study {s} --out-dir radiomics --store",
    }


def _missing(kind: str, what: str, study: str) -> None:
    st.info(f"No stored {what} for this study yet. Compute it with\n\n`{cli_hints(study)[kind]}`")


def _labelled(results: list[StoredResult], table: str) -> pd.DataFrame:
    """Concatenate table ``table`` of several results. A table without a ``method`` column gets
    one (the stored ``params['method']``, else the result's name) when the results need
    telling apart: several results, or a method recorded in the parameters."""
    label = len(results) > 1 or any(r.params.get("method") for r in results)
    parts = []
    for r in results:
        df = r.tables.get(table)
        if df is None or df.empty:
            continue
        df = df.copy()
        if label and "method" not in df.columns:
            df["method"] = str(r.params.get("method") or r.name)
        parts.append(df)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def show_fid(results: list[StoredResult], study: str) -> None:
    """FID per plane (and average) per method, one chart per feature extractor (FIDs from
    different extractors are not comparable, so they never share an axis)."""
    from evaluation import figures

    table = _labelled([r for r in results if r.kind == "fid"], "fid")
    if table.empty or not {"plane", "fid"} <= set(table.columns):
        _missing("fid", "FID", study)
        return
    if "extractor" not in table.columns:
        table["extractor"] = "unknown extractor"
    # the stored conventions name each extractor with its limits
    limits = {
        str(r.params.get("extractor")): str(r.conventions.get("extractor", ""))
        for r in results
        if r.kind == "fid"
    }
    for i, (extractor, part) in enumerate(table.groupby("extractor", sort=True)):
        st.plotly_chart(
            figures.fid_bars(part, str(extractor), limits.get(str(extractor), "")),
            key=f"dash_fid_{i}",
        )


def show_frd(results: list[StoredResult], study: str) -> None:
    """FRD (log of the Frechet distance of radiomics features) per organ and method, as a table
    with its conventions (no chart of its own: a handful of numbers)."""
    frd = [r for r in results if r.kind == "frd"]
    table = _labelled(frd, "frd")
    if table.empty:
        _missing("frd", "FRD", study)
        return
    st.dataframe(table, hide_index=True, width="stretch", height="content")
    st.caption(
        "FRD = log(d^2), features z-scored on the real set; lower = closer. "
        + "; ".join(r.caption for r in frd)
    )


def show_seg(results: list[StoredResult], study: str) -> None:
    """DSC / NSD box plots per method, one chart per NSD tolerance."""
    from evaluation import figures

    seg = [r for r in results if r.kind == "seg"]
    by_tol: dict[float | None, list[StoredResult]] = {}
    for r in seg:
        by_tol.setdefault(r.params.get("tolerance_mm"), []).append(r)
    shown = False
    for i, (tol, rows) in enumerate(sorted(by_tol.items(), key=lambda kv: str(kv[0]))):
        table = _labelled(rows, "seg")
        if not table.empty and {"dsc", "nsd"} <= set(table.columns):
            st.plotly_chart(figures.seg_box(table, tol), key=f"dash_seg_{i}")
            shown = True
    if not shown:
        _missing("seg", "DSC/NSD", study)


def show_radiomics(results: list[StoredResult], study: str) -> None:
    """t-SNE scatter of tumor radiomics features and SVM-vs-readers organ-origin bars."""
    from evaluation import figures

    rad = [r for r in results if r.kind == "radiomics"]
    if not rad:
        _missing("radiomics", "radiomics t-SNE / SVM", study)
        return
    for i, r in enumerate(rad):
        tsne = r.tables.get("tsne")
        if tsne is not None and {"tsne_1", "tsne_2", "organ"} <= set(tsne.columns):
            arms = tsne["arm"] if "arm" in tsne.columns else None
            st.plotly_chart(
                figures.tsne_scatter(
                    tsne[["tsne_1", "tsne_2"]].to_numpy(),
                    tsne["organ"],
                    arms,
                    seed=r.params.get("seed"),
                ),
                key=f"dash_tsne_{i}",
            )
        summary = r.tables.get("svm_summary")
        if summary is not None and not summary.empty:
            st.plotly_chart(
                figures.svm_vs_readers(summary, r.tables.get("readers_origin")), key=f"dash_svm_{i}"
            )
        st.caption(r.caption)


def report_html(session, study_id: int, unsure: str = "exclude", n_boot: int = 1000) -> bytes:
    """The self-contained HTML study report (``evaluation.study_report``, as ``turingct report``
    writes it, unblinding key included) as bytes, built in a temporary folder."""
    from evaluation.report import build_report
    from evaluation.study_report import collect_report

    parts = collect_report(session, study_id, unsure=unsure, n_boot=n_boot)
    with tempfile.TemporaryDirectory(prefix="turingct-report-") as tmp:
        path = build_report(
            parts.tables,
            parts.figures,
            parts.settings,
            Path(tmp) / "r.html",
            title=f"Study report: {parts.settings['study']}",
            conventions=parts.conventions,
            html_tables=parts.html,
        )
        return path.read_bytes()


def show_mrmc(votes: pd.DataFrame) -> None:
    """MRMC ROC analysis of the study's answers (computed by :mod:`evaluation.study_mrmc`):
    the AUC figure, the table and its conventions, or why the answers are not an MRMC design."""
    from evaluation import figures
    from evaluation.study_mrmc import conventions, votes_mrmc
    from evaluation.tables import EvaluationInputError

    st.subheader("MRMC ROC analysis")
    try:
        result, table = votes_mrmc(votes)
    except EvaluationInputError as exc:
        st.info(f"MRMC analysis not available: {exc.problem}")
        return
    st.plotly_chart(figures.mrmc_figure(result), key="dash_mrmc")
    st.dataframe(table, hide_index=True)
    with st.expander("Conventions of the MRMC analysis"):
        st.markdown(
            "\n".join(
                f"- **{k}**: {v}"
                for k, v in conventions(result, "this study", from_study=True).items()
            )
        )

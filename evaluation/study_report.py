"""A study's researcher report: one self-contained HTML file plus a CSV for every table.

Gathers, for one study: settings and provenance (spec, blinding audit, case counts per arm /
organ / method, a provenance summary of each synthesis method), the reader sections of
:mod:`evaluation.study_report_readers` (both unsure conventions, Table-3 layout, pooled results
per organ x method, MRMC, AUC, agreement, McNemar, method comparison, with their figures), time
per case, every stored evaluation result of the study (FID/FRD, DSC/NSD, radiomics,
benchmark rows; the latest of each name), the machine Turing test results of the study and of
its organs (:mod:`evaluation.realism_report`) and the unblinding key. The report is for researchers
(the key is in it); readers never receive it.

Tables are written as ``<out folder>/report_tables/<name>.csv`` with a
``<name>.conventions.txt`` sidecar (see :mod:`evaluation.tables`). The session is passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from core.vocabulary import Task
from evaluation.tables import EvaluationInputError, table_slug, write_table

TABLES_DIR = "report_tables"


@dataclass
class ReportParts:
    """What goes into the report, before rendering (also what a dashboard can show)."""

    settings: dict[str, object]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    conventions: dict[str, dict[str, object]] = field(default_factory=dict)
    figures: list = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    html: dict[str, str] = field(default_factory=dict)  # custom HTML of some tables

    def add(self, name: str, table: pd.DataFrame, conventions: dict[str, object]) -> None:
        self.tables[name] = table
        self.conventions[name] = dict(conventions)


def case_counts(session, study_id: int) -> pd.DataFrame:
    """Cases per arm x organ x method (method blank for real cases)."""
    from sqlalchemy import func, select

    from db.models import StudyCase

    rows = session.execute(
        select(StudyCase.arm, StudyCase.organ, StudyCase.method, func.count(StudyCase.id))
        .where(StudyCase.study_id == study_id)
        .group_by(StudyCase.arm, StudyCase.organ, StudyCase.method)
    ).all()
    df = pd.DataFrame(
        [(a.value, o, m or "", int(n)) for a, o, m, n in rows],
        columns=["arm", "organ", "method", "n_cases"],
    )
    return df.sort_values(["arm", "organ", "method"]).reset_index(drop=True)


def method_provenance(session, study_id: int) -> pd.DataFrame:
    """Per synthesis method of the study's synthetic cases: how many, on which devices, with
    which code versions and checkpoints, and the seed range (from ``SyntheticProvenance``)."""
    from sqlalchemy import select

    from db.models import StudyCase, SyntheticProvenance

    rows = session.execute(
        select(StudyCase.method, SyntheticProvenance)
        .join(SyntheticProvenance, SyntheticProvenance.volume_id == StudyCase.volume_id)
        .where(StudyCase.study_id == study_id)
    ).all()
    columns = [
        "method",
        "n_cases",
        "devices",
        "code_versions",
        "checkpoints",
        "seed_min",
        "seed_max",
    ]
    out = []
    by_method: dict[str, list] = {}
    for method, prov in rows:
        by_method.setdefault(method or prov.method, []).append(prov)
    for method, provs in sorted(by_method.items()):
        out.append(
            {
                "method": method,
                "n_cases": len(provs),
                "devices": ", ".join(sorted({p.device for p in provs})),
                "code_versions": ", ".join(sorted({p.code_version for p in provs})),
                "checkpoints": ", ".join(
                    sorted({(p.checkpoint_hash or "none")[:12] for p in provs})
                ),
                "seed_min": min(p.seed for p in provs),
                "seed_max": max(p.seed for p in provs),
            }
        )
    return pd.DataFrame(out, columns=columns)


def _audit_settings(audit: dict) -> dict[str, object]:
    if not audit:
        return {"blinding audit": "not recorded"}
    auc = audit.get("auc")
    if auc is None:
        return {"blinding audit": f"not run ({audit.get('warning')})"}
    text = (
        f"AUC {auc:.2f} [95% CI {audit.get('ci_low', float('nan')):.2f}-"
        f"{audit.get('ci_high', float('nan')):.2f}], permutation p = "
        f"{audit.get('p_value', float('nan')):.3f} on {audit.get('n_real')} real + "
        f"{audit.get('n_synthetic')} synthetic cases"
    )
    out: dict[str, object] = {
        "blinding audit": text,
        "blinding audit warning": audit.get("warning") or "none (near chance)",
        "blinding audit method": audit.get("method", ""),
    }
    if audit.get("size_auc") is not None:
        out["lesion size alone"] = (
            f"AUC {audit['size_auc']:.2f}, Mann-Whitney p = {audit['size_p_value']:.3f}"
        )
    if audit.get("size_match"):
        from studies.matching import size_match_line

        out["size match"] = size_match_line(audit["size_match"])
    return out


def _reader_parts(parts: ReportParts, session, study, unsure: str, n_boot: int) -> None:
    from evaluation import figures
    from evaluation.study_stats import study_reader_statistics

    try:
        stats = study_reader_statistics(session, study.name, study.design, unsure)
    except EvaluationInputError as exc:
        parts.notes.append(f"reader statistics: {exc.problem}")
        return
    votes = stats.votes
    if stats.task == Task.ORIGIN:
        parts.add(stats.name, stats.table, stats.conventions)
    else:
        from evaluation.study_report_readers import add_turing_parts

        add_turing_parts(parts, votes, study, unsure, n_boot)
    if "seconds" in votes.columns:
        times = votes.groupby("reader")["seconds"].describe()[["count", "mean", "50%", "max"]]
        times = times.rename(columns={"50%": "median"}).reset_index()
        parts.add(
            "time_per_case",
            times,
            {"seconds": "time on case as recorded with each answer (Answer.seconds_on_case)"},
        )
        parts.figures.append(figures.time_per_case_box(votes))


def _stored_parts(parts: ReportParts, session, study_id: int) -> None:
    from evaluation import figures
    from evaluation.store import latest_results, result_tables

    for row in latest_results(session, study=study_id):
        conv = {
            **row.result.get("conventions", {}),
            "stored": f"result {row.id}, "
            f"{row.created_at:%Y-%m-%d %H:%M} UTC, code {row.code_version}",
        }
        for name, table in result_tables(row).items():
            parts.add(table_slug(f"{row.kind}_{row.name}_{name}"), table, conv)
            if row.kind == "seg" and {"dsc", "nsd"} <= set(table.columns):
                parts.figures.append(figures.seg_box(table, row.params.get("tolerance_mm")))
            if row.kind == "fid" and {"plane", "fid"} <= set(table.columns):
                parts.figures.append(
                    figures.fid_bars(
                        table,
                        str(
                            row.params.get("extractor", conv.get("extractor", "unknown extractor"))
                        ),
                        str(conv.get("extractor", "")),
                    )
                )
            if row.kind == "radiomics" and name == "svm_summary":
                origin = result_tables(row).get("readers_origin")
                parts.figures.append(figures.svm_vs_readers(table, origin))


def collect_report(
    session,
    study: int | str,
    *,
    unsure: str = "exclude",
    include_key: bool = True,
    n_boot: int = 1000,
) -> ReportParts:
    """Everything the report shows, as tables + figures + settings (see module docstring)."""
    from core.settings import code_version
    from db.models import Study
    from evaluation.store import resolve_study_id

    st = session.get(Study, resolve_study_id(session, study))
    settings: dict[str, object] = {
        "study": f"{st.name} (id {st.id})",
        "design": st.design.value,
        "status": st.status.value,
        "seed": st.seed,
        "allow_changes": st.allow_changes,
        "educational": st.educational,
        "created": f"{st.created_at:%Y-%m-%d %H:%M} UTC",
        "closed": f"{st.closed_at:%Y-%m-%d %H:%M} UTC" if st.closed_at else "open",
        "export folder": st.export_dir,
        **_audit_settings(st.audit or {}),
        "report code version": code_version(),
        "spec (YAML)": st.spec_yaml or st.spec,
    }
    parts = ReportParts(settings)
    parts.add("case_counts", case_counts(session, st.id), {"rows": "arm x organ x method"})
    pairs = ((st.audit or {}).get("size_match") or {}).get("pairs") or []
    if pairs:
        table = pd.DataFrame(pairs)
        if not include_key:  # the codes of a pair tell which case is real: that is the key
            table = table.drop(columns=["real", "synthetic"])
        parts.add(
            "size_matched_pairs",
            table,
            {
                "rows": "one synthetic case and the real case it was paired with by equivalent "
                "diameter of the largest lesion (mm)"
            },
        )
    prov = method_provenance(session, st.id)
    if len(prov):
        parts.add(
            "method_provenance",
            prov,
            {"source": "synthetic_provenance rows of the study's synthetic cases"},
        )
    _reader_parts(parts, session, st, unsure, n_boot)
    _stored_parts(parts, session, st.id)
    from evaluation.realism_report import add_to_report

    add_to_report(parts, session, st.id)  # machine Turing test: the study's and its organs'
    if include_key:
        from studies.accounts import OPERATOR
        from studies.admin import key_rows

        key = pd.DataFrame(key_rows(session, OPERATOR, st.id))
        parts.add(
            "unblinding_key",
            key,
            {"confidential": "researcher-only: the truth of every blinded case code"},
        )
    if parts.notes:
        parts.settings["notes"] = "; ".join(parts.notes)
    return parts


def write_study_report(
    session,
    study: int | str,
    out_path: str | Path,
    *,
    unsure: str = "exclude",
    include_key: bool = True,
    n_boot: int = 1000,
) -> tuple[Path, list[Path]]:
    """Write ``out_path`` (HTML) and ``report_tables/*.csv`` next to it; returns both."""
    from evaluation.report import build_report

    parts = collect_report(session, study, unsure=unsure, include_key=include_key, n_boot=n_boot)
    out = Path(out_path)
    csv_dir = out.parent / TABLES_DIR
    written = [
        write_table(table, csv_dir / f"{name}.csv", parts.conventions[name], name)[0]
        for name, table in parts.tables.items()
    ]
    html = build_report(
        parts.tables,
        parts.figures,
        parts.settings,
        out,
        title=f"Study report: {parts.settings['study']}",
        conventions=parts.conventions,
        html_tables=parts.html,
    )
    return html, written

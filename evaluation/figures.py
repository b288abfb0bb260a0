"""Plotly figure builders for the dashboards and the HTML report.

Each function takes a table produced by the evaluation layer and returns a
``plotly.graph_objects.Figure``; none of them computes a metric (that lives in the metric
modules). Proportions are shown in percent. Titles state the conventions that change the
numbers (positive class, unsure handling, tolerance, feature extractor).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

PCT = 100.0
# Table figures get the height of all their rows: plotly's default 450 px figure scrolls a
# table after ~9 rows, which hid 7 of 16 reader rows on the dashboard and in the report.
TABLE_HEADER_PX = 34
TABLE_ROW_PX = 30
TABLE_MARGIN_PX = {"t": 70, "b": 20, "l": 10, "r": 10}


def table_height(n_rows: int) -> int:
    """Pixel height of a :func:`reader_table_figure` showing ``n_rows`` rows without scrolling."""
    return (
        TABLE_MARGIN_PX["t"]
        + TABLE_MARGIN_PX["b"]
        + TABLE_HEADER_PX
        + TABLE_ROW_PX * max(1, int(n_rows))
        + 10
    )


def reader_table_figure(table: pd.DataFrame, unsure: str = "exclude") -> go.Figure:
    """The reader x organ table (Table 3 of the book chapter style) with Wilson intervals."""

    def ci(name: str) -> list[str]:
        return [
            f"{PCT * v:.1f} [{PCT * lo:.1f}, {PCT * hi:.1f}]" if np.isfinite(v) else "n/a"
            for v, lo, hi in zip(
                table[name], table[f"{name}_low"], table[f"{name}_high"], strict=True
            )
        ]

    cols = ["reader", *(["method"] if "method" in table.columns else []), "organ"]
    header = [
        *cols,
        "real (unsure)",
        "synthetic (unsure)",
        "sensitivity %",
        "specificity %",
        "accuracy %",
        "p vs 0.5",
    ]
    values = [table[c] for c in cols] + [
        [f"{n} ({u})" for n, u in zip(table.n_real, table.n_unsure_real, strict=True)],
        [f"{n} ({u})" for n, u in zip(table.n_synthetic, table.n_unsure_synthetic, strict=True)],
        ci("sensitivity"),
        ci("specificity"),
        ci("accuracy"),
        [f"{p:.3g}" if np.isfinite(p) else "n/a" for p in table.p_vs_chance],
    ]
    fig = go.Figure(
        go.Table(
            header={"values": header, "height": TABLE_HEADER_PX},
            cells={"values": values, "height": TABLE_ROW_PX},
        )
    )
    fig.update_layout(
        title=f"Reader performance (real tumor = positive; unsure {unsure}; Wilson 95% CI)",
        height=table_height(len(table)),
        margin=TABLE_MARGIN_PX,
    )
    return fig


def specificity_forest(table: pd.DataFrame) -> go.Figure:
    """Forest plot of specificity (synthetic called synthetic) with Wilson intervals and the 0.5
    chance line: one row per reader (x method) x organ, colour by organ, the synthetic cases'
    unsure count next to each point. Points left of 50%: readers fooled."""
    rows = table[np.isfinite(table.specificity)].copy()
    label = rows.reader.astype(str)
    if "method" in rows.columns:
        label = label + " / " + rows.method.astype(str)
    rows["label"] = label + " / " + rows.organ.astype(str)
    fig = go.Figure()
    for organ, part in rows.groupby("organ", sort=False):
        fig.add_trace(
            go.Scatter(
                x=PCT * part.specificity,
                y=part.label,
                mode="markers+text",
                name=str(organ),
                text=[
                    f"unsure {u}/{n}"
                    for u, n in zip(part.n_unsure_synthetic, part.n_synthetic, strict=True)
                ],
                textposition="middle right",
                error_x={
                    "type": "data",
                    "symmetric": False,
                    "array": PCT * (part.specificity_high - part.specificity),
                    "arrayminus": PCT * (part.specificity - part.specificity_low),
                },
            )
        )
    fig.add_vline(x=50, line_dash="dash", annotation_text="chance")
    fig.update_layout(
        title="Specificity per reader x organ (Wilson 95% CI); fooling rate = "
        "100 - x; unsure = unsure answers / synthetic cases",
        xaxis_title="specificity %",
        xaxis_range=[0, 115],
        yaxis={"title": "reader / method / organ", "autorange": "reversed", "type": "category"},
        height=160 + 28 * len(rows),
    )
    return fig


def agreement_heatmap(
    kappa: pd.DataFrame, title: str = "Cohen's kappa per reader pair"
) -> go.Figure:
    """Heat map of a symmetric reader x reader kappa matrix (:func:`agreement.kappa_matrix`)."""
    fig = go.Figure(
        go.Heatmap(
            z=kappa.to_numpy(),
            x=list(kappa.columns),
            y=list(kappa.index),
            zmin=-1,
            zmax=1,
            colorscale="RdBu",
            text=np.round(kappa, 2),
            texttemplate="%{text}",
        )
    )
    fig.update_layout(title=title)
    return fig


def time_per_case_box(times: pd.DataFrame, value: str = "seconds") -> go.Figure:
    """Box plot of answer time per case per reader (columns ``reader``, ``seconds``)."""
    fig = go.Figure(
        [
            go.Box(y=part[value], name=str(reader), boxpoints="outliers")
            for reader, part in times.groupby("reader")
        ]
    )
    fig.update_layout(title="Time per case", yaxis_title="seconds", showlegend=False)
    return fig


def fid_bars(table: pd.DataFrame, extractor: str, limits: str = "") -> go.Figure:
    """FID per plane (and average), grouped by ``method`` when present; the extractor and its
    limits (``conventions["extractor"]`` of a stored FID) in the title."""
    fig = go.Figure()
    groups = table.groupby("method", sort=False) if "method" in table.columns else [("", table)]
    for method, part in groups:
        fig.add_trace(go.Bar(x=part.plane, y=part.fid, name=str(method) or "FID"))
    title = f"FID per plane, extractor {extractor}"
    title += (
        f"<br><sup>{limits}</sup>"
        if limits
        else "<br><sup>limits of this extractor not "
        "recorded; FIDs of different extractors are not comparable</sup>"
    )
    fig.update_layout(title=title, yaxis_title="FID (lower = closer)", barmode="group")
    return fig


def seg_box(metrics: pd.DataFrame, tolerance_mm: float | None = None) -> go.Figure:
    """DSC and NSD box plots (per ``method`` when present) in percent."""
    fig = go.Figure()
    groups = (
        metrics.groupby("method", sort=False) if "method" in metrics.columns else [("", metrics)]
    )
    for method, part in groups:
        for metric in ("dsc", "nsd"):
            fig.add_trace(
                go.Box(
                    y=PCT * part[metric], name=f"{method} {metric.upper()}".strip(), boxpoints="all"
                )
            )
    tol = f" (NSD tolerance {tolerance_mm:g} mm)" if tolerance_mm is not None else ""
    fig.update_layout(
        title=f"Segmentation DSC / NSD{tol}; empty masks: both -> 100, one -> 0",
        yaxis_title="%",
        yaxis_range=[0, 100],
        showlegend=False,
    )
    return fig


def tsne_scatter(embedding: np.ndarray, organs, arms=None, seed: int | None = None) -> go.Figure:
    """t-SNE map coloured by organ; marker symbol by arm (real / synthetic) when given."""
    df = pd.DataFrame(
        {
            "x": embedding[:, 0],
            "y": embedding[:, 1],
            "organ": list(organs),
            "arm": list(arms) if arms is not None else "tumor",
        }
    )
    symbols = {"real": "circle", "synthetic": "x", "tumor": "circle"}
    fig = go.Figure()
    for (organ, arm), part in df.groupby(["organ", "arm"], sort=True):
        fig.add_trace(
            go.Scatter(
                x=part.x,
                y=part.y,
                mode="markers",
                name=f"{organ} ({arm})",
                marker={"symbol": symbols.get(arm, "diamond"), "size": 9},
            )
        )
    seed_txt = f", seed {seed}" if seed is not None else ""
    fig.update_layout(
        title=f"t-SNE of tumor radiomics features{seed_txt}",
        xaxis_title="t-SNE 1",
        yaxis_title="t-SNE 2",
    )
    return fig


def svm_vs_readers(
    svm_summary: pd.DataFrame, reader_origin: pd.DataFrame | None = None
) -> go.Figure:
    """Bars of SVM train/test macro precision and recall (mean +- sd over splits) next to each
    reader's macro organ-origin precision and recall; chance line at 1/3."""
    s = svm_summary.set_index("metric")
    fig = go.Figure()
    for kind in ("precision", "recall"):
        names = ["SVM train", "SVM test"]
        y = [s.loc[f"train_{kind}", "mean"], s.loc[f"test_{kind}", "mean"]]
        err = [s.loc[f"train_{kind}", "sd"], s.loc[f"test_{kind}", "sd"]]
        if reader_origin is not None:
            macro = reader_origin[reader_origin.organ == "macro"]
            names += [str(r) for r in macro.reader]
            y += list(macro[kind])
            err += [0.0] * len(macro)
        fig.add_trace(
            go.Bar(
                x=names,
                y=PCT * np.asarray(y, dtype=float),
                name=kind,
                error_y={"type": "data", "array": PCT * np.asarray(err)},
            )
        )
    fig.add_hline(y=PCT / 3, line_dash="dash", annotation_text="chance (1/3)")
    fig.update_layout(
        title="Organ origin: SVM on radiomics vs readers (macro %)",
        yaxis_range=[0, 100],
        barmode="group",
    )
    return fig


def mrmc_figure(result: dict) -> go.Figure:
    """Reader-averaged AUC per modality with its RRRC 95% CI (Hillis df), each reader's AUC as
    a dot, and the 0.5 line (readers cannot tell real from synthetic); from
    :func:`evaluation.mrmc.or_analysis`."""
    mods = result["modalities"]
    fig = go.Figure()
    for reader in result["readers"]:
        fig.add_trace(
            go.Scatter(
                x=[result["auc"][m][reader] for m in mods],
                y=mods,
                mode="markers",
                name=f"reader {reader}",
                opacity=0.6,
                marker={"size": 7},
            )
        )
    single = result["rrrc"]["single"]
    x = [result["mean_auc"][m] for m in mods]
    hi = [single[m]["ci95"][1] - result["mean_auc"][m] if m in single else 0.0 for m in mods]
    lo = [result["mean_auc"][m] - single[m]["ci95"][0] if m in single else 0.0 for m in mods]
    fig.add_trace(
        go.Scatter(
            x=x,
            y=mods,
            mode="markers",
            name="mean (RRRC 95% CI)",
            marker={"size": 12, "symbol": "diamond", "color": "black"},
            error_x={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
        )
    )
    fig.add_vline(x=0.5, line_dash="dash", annotation_text="chance")
    rrrc = result["rrrc"]
    sub = ""
    if len(mods) > 1 and rrrc["f"] == rrrc["f"]:
        sub = (
            f"<br><sup>RRRC F = {rrrc['f']:.3g}, ddf = {rrrc['ddf']:.3g}, p = {rrrc['p']:.3g}</sup>"
        )
    fig.update_layout(
        title="MRMC ROC AUC (Obuchowski-Rockette, Hillis df; "
        f"{result['covariance']['method']} covariance){sub}",
        xaxis_title="AUC (real tumor = positive)",
        xaxis_range=[0, 1.02],
        yaxis_title="modality",
        height=220 + 40 * len(mods),
    )
    return fig

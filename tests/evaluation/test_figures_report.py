"""Figures carry the table's numbers and conventions; the report is one self-contained file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation import figures
from evaluation.agreement import kappa_matrix, pairwise_cohen_kappa
from evaluation.readers import conventions, reader_table, validate_votes
from evaluation.report import build_report
from evaluation.tables import conventions_path, write_table


@pytest.fixture
def votes():
    truth = ["real"] * 4 + ["synthetic"] * 4
    rows = []
    answers = {
        "R1": ["real", "real", "real", "unsure", "real", "real", "synthetic", "synthetic"],
        "R2": ["real", "synthetic", "real", "real", "synthetic", "synthetic", "synthetic", "real"],
    }
    for reader, ans in answers.items():
        for i, (t, a) in enumerate(zip(truth, ans, strict=True)):
            rows.append(
                {"reader": reader, "case": f"c{i}", "organ": "liver", "truth": t, "answer": a}
            )
    return validate_votes(pd.DataFrame(rows))


def test_forest_plot_shows_specificity_percent_with_chance_line(votes):
    table = reader_table(votes)
    fig = figures.specificity_forest(table)
    liver = [t for t in fig.data if t.name == "liver"][0]
    # R1: 2 of 4 synthetic called synthetic; R2: 3 of 4
    np.testing.assert_allclose(liver.x, [50.0, 75.0])
    # one row per reader x organ: the organs of a reader no longer share (and hide) a row
    assert list(liver.y) == ["R1 / liver", "R2 / liver"]
    assert {t.name for t in fig.data} == {"liver", "all"}
    labels = [y for t in fig.data for y in t.y]
    assert len(labels) == len(set(labels)) == 4
    assert list(liver.text) == ["unsure 0/4", "unsure 0/4"]  # unsure counts on the plot
    # R2 specificity 3/4: Wilson [0.301, 0.954] -> error bars reach those bounds
    assert liver.x[1] + liver.error_x.array[1] == pytest.approx(95.44, abs=0.01)
    assert any(shape.x0 == 50 for shape in fig.layout.shapes)


def test_report_is_self_contained_with_tables_figures_conventions(votes, tmp_path):
    table = reader_table(votes)
    kappa = kappa_matrix(pairwise_cohen_kappa(votes))
    figs = [
        figures.reader_table_figure(table),
        figures.specificity_forest(table),
        figures.agreement_heatmap(kappa),
        figures.fid_bars(
            pd.DataFrame({"plane": ["axial", "average"], "fid": [3.0, 3.0]}),
            "random-conv-v1",
            "untrained",
        ),
    ]
    out = build_report(
        {"readers": table},
        figs,
        {"study": "demo <b>", "seed": 0},
        tmp_path / "r.html",
        conventions={"readers": conventions("exclude")},
    )
    text = out.read_text()
    assert text.count("* plotly.js v") == 1  # the plotly.js bundle is embedded once
    assert "<script src=" not in text  # nothing fetched from the network
    assert "demo &lt;b&gt;" in text and "real tumor" in text
    assert text.count('class="plotly-graph-div"') == len(figs)
    assert "random-conv-v1" in text and "<th>sensitivity</th>" in text


def test_table_figure_is_sized_to_its_rows():
    rows = [
        {"reader": f"R{r}", "case": f"c{i}", "organ": organ, "truth": t, "answer": t}
        for r in range(6)
        for organ in ("liver", "pancreas", "kidney")
        for i, t in enumerate(["real", "synthetic"] * 2)
    ]
    votes = validate_votes(pd.DataFrame(rows).assign(case=lambda d: d.organ + d.case))
    table = reader_table(votes)
    assert len(table) == 24
    fig = figures.reader_table_figure(table)
    row_px = fig.data[0].cells.height
    assert fig.layout.height >= row_px * (len(table) + 1)  # all 24 rows + header visible


def test_fid_figure_states_extractor_limits():
    table = pd.DataFrame({"plane": ["axial", "average"], "fid": [3.0, 3.0]})
    fig = figures.fid_bars(table, "random-conv-v1", "untrained random-weight CNN")
    assert "untrained random-weight CNN" in fig.layout.title.text
    assert "not comparable" in figures.fid_bars(table, "x").layout.title.text


def test_write_table_sidecar(tmp_path, votes):
    csv, side = write_table(reader_table(votes), tmp_path / "t.csv", conventions("wrong"))
    assert side == conventions_path(csv) == tmp_path / "t.conventions.txt"
    assert "unsure: wrong" in side.read_text()
    assert list(pd.read_csv(csv).columns[:2]) == ["reader", "organ"]


def test_reader_table_figure_is_tall_enough_for_every_row():
    # 24 reader x organ rows (2 organs + all): plotly's default 450 px figure showed 9 and
    # scrolled the rest
    rows = []
    for r in range(8):
        for organ in ("liver", "kidney"):
            for i, t in enumerate(["real"] * 3 + ["synthetic"] * 3):
                rows.append(
                    {
                        "reader": f"R{r}",
                        "case": f"{organ}{i}",
                        "organ": organ,
                        "truth": t,
                        "answer": "real",
                    }
                )
    table = reader_table(validate_votes(pd.DataFrame(rows)))
    assert len(table) == 24
    fig = figures.reader_table_figure(table)
    trace = fig.data[0]
    margin = fig.layout.margin
    needed = margin.t + margin.b + trace.header.height + 24 * trace.cells.height
    assert fig.layout.height >= needed


def test_report_prints_a_spec_as_yaml(tmp_path):
    spec_yaml = "name: s\ndesign: turing\npresentation:\n  spacing_mm: 1.0\n"
    out = build_report(
        {},
        [],
        {"spec (YAML)": spec_yaml, "spec dict": {"a": {"b": 1}}, "plain": "<b>x</b>"},
        tmp_path / "r.html",
    )
    html = out.read_text()
    assert "<pre>name: s\ndesign: turing\npresentation:\n  spacing_mm: 1.0</pre>" in html
    assert "<pre>a:\n  b: 1</pre>" in html and "&lt;b&gt;x&lt;/b&gt;" in html

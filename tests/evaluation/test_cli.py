"""`turingct evaluate ...` end to end on small files; errors are one line with exit code 2."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from turingct.cli import main


def _write_votes(path):
    rows = []
    for reader in ("R1", "R2"):
        for i in range(6):
            truth = "real" if i < 3 else "synthetic"
            answer = truth if (i + (reader == "R2")) % 3 else "unsure"
            rows.append(
                {
                    "reader": reader,
                    "case": f"c{i}",
                    "organ": "kidney",
                    "truth": truth,
                    "answer": answer,
                    "confidence": 1 + i % 5,
                }
            )
    pd.DataFrame(rows).to_csv(path, index=False)


def test_evaluate_readers_and_agreement(tmp_path, capsys):
    votes = tmp_path / "votes.csv"
    _write_votes(votes)
    out = tmp_path / "table.csv"
    assert (
        main(["evaluate", "readers", "--votes", str(votes), "--out", str(out), "--unsure", "wrong"])
        == 0
    )
    table = pd.read_csv(out)
    assert set(table.organ) == {"kidney", "all"} and len(table) == 4
    # R1: unsure on c0 (real) and c3 (synthetic) -> counted wrong: tp 2, fn 1, tn 2, fp 1
    r1 = table[(table.reader == "R1") & (table.organ == "all")].iloc[0]
    assert (r1.tp, r1.fn, r1.tn, r1.fp) == (2, 1, 2, 1)
    assert "unsure: wrong" in (tmp_path / "table.conventions.txt").read_text()
    assert (
        main(
            [
                "evaluate",
                "agreement",
                "--votes",
                str(votes),
                "--out-dir",
                str(tmp_path / "agr"),
                "--n-boot",
                "50",
            ]
        )
        == 0
    )
    pooled = pd.read_csv(tmp_path / "agr" / "pooled.csv")
    assert pooled.statistic.tolist() == ["accuracy", "sensitivity", "specificity"] * 2
    assert pooled.organ.tolist() == ["kidney"] * 3 + ["all"] * 3
    assert pooled.estimate[0] == pytest.approx(1.0)  # every non-unsure answer is right


def test_bad_votes_file_is_one_line_exit_2(tmp_path, capsys):
    bad = tmp_path / "votes.csv"
    bad.write_text("reader,case,organ,answer\nR1,c1,liver,real\n")
    assert main(["evaluate", "readers", "--votes", str(bad), "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{bad}: missing column(s) truth" in err


def test_evaluate_origin(tmp_path):
    votes = tmp_path / "origin.csv"
    pd.DataFrame(
        {
            "reader": ["R 1"] * 3,
            "case": ["a", "b", "c"],
            "organ": ["liver", "pancreas", "kidney"],
            "answer": ["liver", "kidney", "kidney"],
        }
    ).to_csv(votes, index=False)
    out = tmp_path / "origin_table.csv"
    assert main(["evaluate", "origin", "--votes", str(votes), "--out", str(out)]) == 0
    table = pd.read_csv(out).set_index("organ")
    assert table.loc["kidney", "precision"] == pytest.approx(0.5)
    assert (tmp_path / "origin_table.confusion.R_1.csv").is_file()


def _save(array, path, spacing=(1.0, 1.0, 2.0), dtype=np.uint8):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array.astype(dtype), np.diag([*spacing, 1.0])), str(path))


def test_evaluate_seg(tmp_path, capsys):
    a = np.zeros((10, 10, 10), np.uint8)
    a[2:6, 2:6, 2:6] = 1
    _save(a, tmp_path / "truth" / "x.nii.gz")
    _save(np.roll(a, 1, axis=0), tmp_path / "pred" / "x.nii.gz")
    out = tmp_path / "m.csv"
    assert (
        main(
            [
                "evaluate",
                "seg",
                "--pred",
                str(tmp_path / "pred"),
                "--truth",
                str(tmp_path / "truth"),
                "--tolerance-mm",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    row = pd.read_csv(out).iloc[0]
    assert row.dsc == pytest.approx(0.75) and row.nsd == pytest.approx(1.0)
    assert "1 mm" in (tmp_path / "m.conventions.txt").read_text()


def test_evaluate_fid_default_extractor(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for arm, shift in (("real", 0), ("syn", 80)):
        for i in range(2):
            ct = np.full((24, 24, 12), -1000.0)
            ct[4:20, 4:20, 1:11] = 40 + shift + rng.normal(0, 20, (16, 16, 10))
            _save(ct, tmp_path / arm / f"case{i}" / "ct.nii.gz", dtype=np.int16)
    out = tmp_path / "fid.csv"
    assert (
        main(
            [
                "evaluate",
                "fid",
                "--real",
                str(tmp_path / "real"),
                "--synthetic",
                str(tmp_path / "syn"),
                "--max-slices",
                "4",
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    table = pd.read_csv(out)
    assert table.plane.tolist() == ["axial", "coronal", "sagittal", "average"]
    assert (table.fid > 0).all() and set(table.extractor) == {"random-conv-v1"}
    assert "not comparable" in (tmp_path / "fid.conventions.txt").read_text()
    assert "random-conv-v1" in capsys.readouterr().out


def test_evaluate_radiomics_and_frd(tmp_path, capsys):
    pytest.importorskip("radiomics", reason="pyradiomics is not installed")
    from tests.evaluation.test_radiomics import _tumor_case

    rows = []
    for i, organ in enumerate(["liver", "pancreas", "kidney"] * 3):
        ct, mask = _tumor_case(tmp_path, f"t{i}", seed=i, radius=(3.0 + i % 3, 3.0, 2.5))
        rows.append(
            {
                "ct": ct.name,
                "mask": mask.name,
                "organ": organ,
                "arm": "real" if i < 5 else "synthetic",
            }
        )
    cases = tmp_path / "cases.csv"
    pd.DataFrame(rows).to_csv(cases, index=False)
    out = tmp_path / "rad"
    assert (
        main(
            ["evaluate", "radiomics", "--cases", str(cases), "--out-dir", str(out), "--splits", "3"]
        )
        == 0
    )
    assert len(pd.read_csv(out / "features.csv")) == 9
    assert len(pd.read_csv(out / "svm_splits.csv")) == 3
    assert pd.read_csv(out / "tsne.csv")[["tsne_1", "tsne_2"]].notna().all().all()
    assert "binWidth" in (out / "features.conventions.txt").read_text()
    assert (out / "report.html").stat().st_size > 1_000_000  # plotly.js embedded
    assert main(["evaluate", "frd", "--cases", str(cases), "--out", str(tmp_path / "frd.csv")]) == 0
    frd = pd.read_csv(tmp_path / "frd.csv").set_index("organ")
    assert frd.loc["all", "n_real"] == 5 and frd.loc["all", "n_synthetic"] == 4
    assert np.isfinite(frd.loc["all", "frd"])

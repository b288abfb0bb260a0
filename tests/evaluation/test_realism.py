"""The machine Turing test (`turingct evaluate realism`) on small generated volumes.

Real arm: irregular, textured hypodense lesions; "flat" method: smooth uniform spheres 40 HU
darker (a machine must see them: AUC near 1); "twin" method: drawn from exactly the real
generator (the machine must not see a difference: AUC near chance). Every patient volume holds
one real lesion and gets one tumor of each method, so folds grouped by volume are meaningful.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

pytest.importorskip("radiomics", reason="pyradiomics is not installed")

from evaluation import realism
from evaluation.realism_sources import real_sources, synthetic_sources
from evaluation.tables import EvaluationInputError
from studies.spec import Crop, Presentation
from turingct.cli import main

SHAPE = (56, 56, 36)
SPACING = (1.5, 1.5, 2.0)
PRESENTATION = Presentation(spacing_mm=(1.5, 1.5, 1.5), crop=Crop(size=(33.0, 33.0, 27.0)))
SPEC_YAML = """name: realism-test
design: turing
organs: [liver]
cases_per_organ: {real: 1, synthetic: 1}
presentation:
  spacing_mm: [1.5, 1.5, 1.5]
  crop: {around: tumor, size: [33, 33, 27], unit: mm}
"""


def _save(array, path, dtype):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(array).astype(dtype), np.diag([*SPACING, 1.0])), str(path))


def _grid():
    return np.meshgrid(
        *[(np.arange(n) - n / 2) * s for n, s in zip(SHAPE, SPACING, strict=True)], indexing="ij"
    )


def _liver(rng):
    ct = rng.normal(100, 12, SHAPE)
    ct[:, :, :3] = -1000  # some air so the HU check of the loader is satisfied
    return ct


def _lesion(ct, rng, kind, center_mm):
    x, y, z = _grid()
    r = rng.uniform(7, 10)
    d = np.sqrt((x - center_mm[0]) ** 2 + (y - center_mm[1]) ** 2 + (z - center_mm[2]) ** 2)
    if kind == "real":  # lobulated border, heterogeneous interior
        theta = np.arctan2(y - center_mm[1], x - center_mm[0])
        mask = d < r * (1 + 0.2 * np.sin(3 * theta + rng.uniform(0, 6)))
        ct[mask] = rng.normal(60, 25, mask.sum())
    else:  # "flat": a perfect sphere of one value
        mask = d < r
        ct[mask] = 20 + rng.normal(0, 2, mask.sum())
    return mask


CENTERS = ((-18.0, -18.0, 0.0), (18.0, 18.0, 0.0), (-18.0, 18.0, 0.0))


def _cohort(tmp_path, n_patients=5):
    """real/: atlas layout (one real lesion per patient); syn/<method>/<case>/: synthesis
    outputs on the same patients (provenance ties them to the patient's CT hash)."""
    from synth_backend.io import sha256_file

    for i in range(n_patients):
        rng = np.random.default_rng(i)
        ct = _liver(rng)
        real = _lesion(ct, rng, "real", CENTERS[0])
        case = tmp_path / "real" / f"p{i}"
        _save(ct, case / "ct.nii.gz", np.int16)
        _save(np.ones(SHAPE), case / "segmentations" / "liver.nii.gz", np.uint8)
        _save(real, case / "segmentations" / "liver_tumor.nii.gz", np.uint8)
        source = sha256_file(case / "ct.nii.gz")
        for method, kind, center in (("flat", "flat", CENTERS[1]), ("twin", "real", CENTERS[2])):
            syn = ct.copy()
            mask = _lesion(syn, rng, kind, center)
            out = tmp_path / "syn" / method / f"p{i}"
            _save(syn, out / "ct.nii.gz", np.int16)
            _save(mask, out / "tumor_mask.nii.gz", np.uint8)
            (out / "provenance.json").write_text(
                json.dumps(
                    {
                        "method": method,
                        "organ": "liver",
                        "seed": i,
                        "options": {},
                        "inputs": {"ct": {"sha256": source}},
                    }
                )
            )
    return tmp_path


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return _cohort(tmp_path_factory.mktemp("realism"))


@pytest.fixture(scope="module")
def measured(cohort):
    sources = real_sources(str(cohort / "real"), "liver")[0]
    for m in ("flat", "twin"):
        sources += synthetic_sources(str(cohort / "syn" / m), "liver")[0]
    cases = realism.make_cases(sources, PRESENTATION)
    feats = realism.case_features(cases, PRESENTATION.spacing_mm)
    return cases, feats


def test_cases_are_blinded_crops_grouped_by_patient(measured):
    cases, feats = measured
    assert len(cases) == 15 and {c.arm for c in cases} == {"real", "synthetic"}
    shape = (22, 22, 18)  # 33 x 33 x 27 mm at 1.5 mm
    for c in cases:
        assert c.ct.shape == shape and c.ct.dtype == np.int16 and c.tumor.any()
        nz = np.array(np.nonzero(c.tumor))
        centre = (nz.min(axis=1) + nz.max(axis=1)) / 2  # the lesion's box is centred
        assert np.allclose(centre, (np.array(shape) - 1) / 2, atol=1.0)
    # a synthetic tumor shares its group with the real tumor of the same patient
    by_volume = pd.Series([c.volume for c in cases]).value_counts()
    assert len(by_volume) == 5 and (by_volume == 3).all()
    assert any(c.startswith(realism.RIM_PREFIX) for c in feats.columns)
    assert "original_shape_Sphericity" in feats.columns


def test_grouped_folds_keep_volumes_apart():
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0])
    groups = ["a", "a", "a", "b", "b", "c", "c", "d"]
    folds = realism.grouped_folds(y, groups, seed=0)
    for train, test in folds:
        assert not set(np.asarray(groups)[train]) & set(np.asarray(groups)[test])
    assert sorted(np.concatenate([t for _, t in folds]).tolist()) == list(range(8))
    with pytest.raises(EvaluationInputError, match="one source volume"):
        realism.grouped_folds(y, ["a"] * 8, seed=0)
    with pytest.raises(EvaluationInputError, match="no real tumor"):
        realism.grouped_folds(np.array([1, 1, 0, 0, 0, 0]), ["a", "a", "b", "b", "c", "c"], seed=0)


def test_within_fold_auc_ignores_offsets_between_fold_models():
    y = np.array([1, 0, 1, 0, 0])
    fold = np.array([0, 0, 1, 1, 2])
    s = np.array([1.0, 0.0, 11.0, 10.0, 20.0])  # model of fold 1 scores 10 higher
    assert realism.within_fold_auc(y, s, fold) == 1.0  # each fold ranks its real case first
    assert realism.auc(y, s) == pytest.approx(3 / 6)  # pooled: the offsets mix up the ranks
    assert np.isnan(realism.within_fold_auc(y, s, np.arange(5)))


def test_auc_and_bootstrap_match_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = np.array([1] * 12 + [0] * 15)
    s = rng.normal(size=27) + 0.8 * y
    assert realism.auc(y, s) == pytest.approx(roc_auc_score(y, s))
    lo, hi = realism.bootstrap_auc_ci(y, s, seed=0, n_boot=500)
    assert lo < realism.auc(y, s) < hi and lo >= 0 and hi <= 1


def test_machine_sees_the_flat_method_and_not_the_twin(measured):
    cases, feats = measured
    result = realism.run_realism(
        cases,
        feats,
        organ="liver",
        spacing=PRESENTATION.spacing_mm,
        discriminators=realism.RADIOMICS_MODELS,
        n_boot=300,
        n_perm=20,
    )
    t = result.table.set_index(["method", "discriminator"])
    assert list(result.table.columns) == list(realism.TABLE_COLUMNS)
    for d in realism.RADIOMICS_MODELS:
        flat, twin = t.loc[("flat", d)], t.loc[("twin", d)]
        assert flat.auc >= 0.9 and flat.p_value < 0.1 and flat.auc_within_fold >= 0.9
        assert twin.auc < 0.85 and twin.auc_ci_low <= 0.5 + 1e-9  # not distinguishable
        assert flat.n_real == 5 and flat.n_synthetic == 5 and flat.n_volumes == 5
        assert flat.auc_ci_low <= flat.auc <= flat.auc_ci_high
    assert t.loc[("flat", "radiomics-logreg")].frd > t.loc[("twin", "radiomics-logreg")].frd
    # what gives "flat" away: intensity (it is 40 HU darker and uniform), strongly
    top = result.features[result.features.method == "flat"]
    assert len(top) == realism.TOP_FEATURES and top["rank"].tolist()[0] == 1
    assert top.iloc[0]["auc"] in (0.0, 1.0)
    first_order = top[top.feature.str.contains("firstorder") & (top.region == "tumor")]
    assert not first_order.empty
    assert set(result.scores.method) == {"flat", "twin"}
    assert result.scores.groupby(["method", "discriminator"]).size().eq(10).all()


def test_cnn_discriminator_runs_seeded(measured):
    from evaluation.realism_cnn import cnn_oof_scores

    cases, _ = measured
    sub = [c for c in cases if c.arm == "real" or c.method == "flat"]
    y = np.array([c.label for c in sub])
    folds = realism.grouped_folds(y, [c.volume for c in sub], seed=0)
    crops = np.stack([c.ct for c in sub])
    a = cnn_oof_scores(crops, y, folds, seed=1, epochs=8, input_shape=(32, 32, 32))
    b = cnn_oof_scores(crops, y, folds, seed=1, epochs=8, input_shape=(32, 32, 32))
    assert np.isfinite(a).all() and np.allclose(a, b)  # seeded: the same scores again
    # a 40 HU darker, uniform lesion is easy even for 8 epochs of a tiny CNN
    assert realism.auc(y, a) >= 0.8


def test_bad_input_is_an_input_error(measured, cohort):
    cases, feats = measured
    no_real = [c for c in cases if c.arm == "synthetic"]
    with pytest.raises(EvaluationInputError, match="no real liver tumor"):
        realism.check_arms(no_real, "liver", ["flat"])
    few = [c for c in cases if c.arm == "real"] + [c for c in cases if c.method == "flat"][:3]
    with pytest.raises(EvaluationInputError, match="only 3 synthetic liver tumor"):
        realism.check_arms(few, "liver", ["flat"])
    with pytest.raises(EvaluationInputError, match="no kidney tumor mask"):
        real_sources(str(cohort / "real"), "kidney")
    with pytest.raises(EvaluationInputError, match="organ absent"):
        synthetic_sources(str(cohort / "syn" / "flat"), "kidney")
    with pytest.raises(EvaluationInputError, match="neither a folder"):
        synthetic_sources("no-such-method", "liver")


def test_cli_writes_tables_and_stores(cohort, tmp_path, db_url, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC_YAML)
    out = tmp_path / "out" / "realism.csv"
    argv = [
        "evaluate",
        "realism",
        "--real",
        str(cohort / "real"),
        "--synthetic",
        f"flat-A={cohort / 'syn' / 'flat'}",
        str(cohort / "syn" / "twin"),
        "--organ",
        "liver",
        "--out",
        str(out),
        "--spec",
        str(spec),
        "--discriminators",
        "radiomics-logreg",
        "cnn",
        "--cnn-epochs",
        "2",
        "--n-boot",
        "200",
        "--n-permutations",
        "10",
        "--store",
        "--db",
        db_url,
    ]
    assert main(argv) == 0
    table = pd.read_csv(out)
    assert set(table.method) == {"flat-A", "twin"}
    assert set(table.discriminator) == {"radiomics-logreg", "cnn"}
    assert table.p_value[table.discriminator == "cnn"].isna().all()
    conv = (tmp_path / "out" / "realism.conventions.txt").read_text()
    assert "StratifiedGroupKFold" in conv and "chance: AUC 0.5" in conv
    assert "1.5, 1.5, 1.5" in conv  # the spec's presentation was used
    for what in ("features", "scores", "cases"):
        assert (tmp_path / "out" / f"realism.{what}.csv").is_file()
    html = (tmp_path / "out" / "realism.html").read_text()
    assert "Machine Turing test" in html and "flat-A" in html
    from db.session import make_engine, session_scope
    from evaluation.store import latest_results, result_tables

    with session_scope(make_engine(db_url)) as session:
        rows = latest_results(session, kind="realism")
        assert len(rows) == 1 and rows[0].params["organ"] == "liver"
        tables = result_tables(rows[0])
        assert set(tables) == {"realism", "realism_features", "realism_cases"}
        assert len(tables["realism"]) == 4


def test_cli_bad_input_is_one_line_and_stores_nothing(cohort, tmp_path, db_url, capsys):
    few = tmp_path / "few"
    for i in range(3):
        src = cohort / "syn" / "flat" / f"p{i}"
        dst = few / f"p{i}"
        dst.mkdir(parents=True)
        for f in src.iterdir():
            (dst / f.name).write_bytes(f.read_bytes())
    base = [
        "evaluate",
        "realism",
        "--real",
        str(cohort / "real"),
        "--organ",
        "liver",
        "--out",
        str(tmp_path / "r.csv"),
        "--store",
        "--db",
        db_url,
    ]
    assert main([*base, "--synthetic", str(few)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "only 3 synthetic liver tumor(s) of flat" in err
    assert main([*base, "--organ", "kidney", "--synthetic", str(few)]) == 2
    assert "no kidney tumor mask" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()
    from db.session import make_engine, session_scope
    from evaluation.store import latest_results

    with session_scope(make_engine(db_url)) as session:
        assert latest_results(session, kind="realism") == []


def test_method_labels_name_non_default_profiles():
    from evaluation.realism_sources import method_label

    assert method_label("handcrafted", "vtt") == "handcrafted:vtt"
    assert method_label("handcrafted", "train") == "handcrafted"
    assert method_label("pixel2cancer", None) == "pixel2cancer"


def test_cli_defaults_match_the_module():
    from evaluation import realism_cnn
    from turingct.cli import evaluate_realism as cli

    assert cli.DISCRIMINATORS == realism.DISCRIMINATORS
    assert (cli.EPOCHS, cli.N_BOOTSTRAP, cli.N_PERMUTATIONS, cli.MIN_LESION_ML) == (
        realism_cnn.EPOCHS,
        realism.N_BOOTSTRAP,
        realism.N_PERMUTATIONS,
        realism.MIN_LESION_ML,
    )


def test_cli_from_the_catalog(engine, db_url, tmp_path, capsys):
    """--real DATASET and --synthetic METHOD read the catalog (phantom lesions vs the
    registered synthetic volumes of a method)."""
    from db.session import session_scope
    from studies.accounts import OPERATOR
    from studies.admin import create_study
    from tests.studies._catalog import build_catalog, spec_dict

    with session_scope(engine) as s:
        build_catalog(
            s,
            tmp_path / "cat",
            n_real=4,
            n_synthetic=4,
            seed=2,
            synthetic_opts={"tumor_hu": -10.0, "noise": 5.0},
        )
        create_study(s, spec_dict(), actor=OPERATOR, export_root=tmp_path / "exp", progress=False)
    out = tmp_path / "cat.csv"
    assert (
        main(
            [
                "evaluate",
                "realism",
                "--real",
                "phantoms",
                "--synthetic",
                "handcrafted",
                "--organ",
                "liver",
                "--out",
                str(out),
                "--for-study",
                "t1",
                "--store",
                "--discriminators",
                "radiomics-logreg",
                "--n-boot",
                "100",
                "--n-permutations",
                "0",
                "--db",
                db_url,
            ]
        )
        == 0
    )
    row = pd.read_csv(out).iloc[0]
    assert (row.method, row.n_real, row.n_synthetic, row.n_volumes) == ("handcrafted", 4, 4, 8)
    conv = (tmp_path / "cat.conventions.txt").read_text()
    # the crops copy study t1's presentation: 1.5 mm, 24 x 24 x 18 mm
    assert "catalog dataset phantoms" in conv
    assert "(1.5, 1.5, 1.5) mm, box (24.0, 24.0, 18.0)" in conv
    from evaluation.store import latest_results

    with session_scope(engine) as s:
        (stored,) = latest_results(s, kind="realism", study="t1")
        assert stored.params["spacing_mm"] == [1.5, 1.5, 1.5]
    assert (
        main(
            [
                "evaluate",
                "realism",
                "--real",
                "no-such-dataset",
                "--synthetic",
                "handcrafted",
                "--organ",
                "liver",
                "--out",
                str(out),
                "--db",
                db_url,
            ]
        )
        == 2
    )
    assert "'no-such-dataset' is not a file, folder or catalog dataset" in capsys.readouterr().err

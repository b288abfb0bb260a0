"""Segmentation benchmark on a small phantom cohort: split, seeded sampling, tiny training run.

The cohort has 7 cases with a phantom lesion each, round-robin liver/pancreas/kidney, so the
liver has 3 tumor volumes (cases 0, 3, 6) and 4 healthy ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.segbench import folder_cases, preset, run_benchmark, split_cases
from evaluation.segbench.data import PatchSampler, extract_patch
from evaluation.segbench.run import ROW_COLUMNS, store_benchmark
from evaluation.segbench.train import BenchmarkStateError
from synth_backend.phantom import PhantomConfig, generate_cohort
from synth_backend.registry import get_synthesizer

# a shrunken tiny preset: 3 mm grid and 32^3 patches keep the CPU cost of a run to seconds
CONFIG = preset(
    "tiny", iterations=16, spacing_mm=3.0, patch=(32, 32, 32), checkpoint_every=8, n_boot=200
)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    root = generate_cohort(
        tmp_path_factory.mktemp("cohort"),
        n=7,
        seed=0,
        config=PhantomConfig.small(),
        lesion_fraction=1.0,
        progress=False,
    )
    return folder_cases(root, "liver", CONFIG)


def test_cases_and_split(cases):
    assert len(cases) == 7
    assert [c.has_tumor for c in cases] == [True, False, False, True, False, False, True]
    assert {c.tumor_kind for c in cases if c.has_tumor} == {"phantom_lesion"}
    assert all(c.spacing == (3.0, 3.0, 3.0) and c.ct.shape == c.organ.shape for c in cases)
    split = split_cases(cases, seed=0, test_fraction=0.34)
    # round(0.34 * 3) = 1 tumor and round(0.34 * 4) = 1 healthy volume held out
    assert len(split.train_tumor) == 2 and len(split.train_healthy) == 3
    assert sorted(c.has_tumor for c in split.test) == [False, True]
    train_ids = {c.case_id for c in split.train_tumor + split.train_healthy}
    assert train_ids.isdisjoint(c.case_id for c in split.test)
    again = split_cases(list(reversed(cases)), seed=0, test_fraction=0.34)
    assert [c.case_id for c in again.test] == [c.case_id for c in split.test]


def test_extract_patch_pads_outside():
    a = np.arange(27).reshape(3, 3, 3)
    p = extract_patch(a, (0, 0, 0), (2, 2, 2), -1)
    # centre (0,0,0) with size 2 starts at -1: first row/col/slice is padding
    assert p[0].max() == -1 and p[1, 1, 1] == a[0, 0, 0]


def test_sampling_is_reproducible_by_seed(cases):
    split = split_cases(cases, seed=0, test_fraction=0.34)
    synth = get_synthesizer("handcrafted")

    def sampler(seed):
        return PatchSampler(
            split, "handcrafted", "liver", CONFIG, np.random.default_rng(seed), synth
        )

    a, b, c = sampler(5), sampler(5), sampler(6)
    specs_a = [a.next_spec() for _ in range(12)]
    assert specs_a == [b.next_spec() for _ in range(12)]
    assert specs_a != [c.next_spec() for _ in range(12)]
    assert any(s.add_tumor for s in specs_a) and not all(s.add_tumor for s in specs_a)
    tumor_spec = next(s for s in specs_a if s.add_tumor and s.foreground)
    img1, lab1 = a.patch(tumor_spec)
    img2, lab2 = b.patch(tumor_spec)
    assert np.array_equal(img1, img2) and np.array_equal(lab1, lab2)
    assert img1.shape == (1, 32, 32, 32) and img1.min() >= 0 and img1.max() <= 1
    assert lab1.sum() > 0  # a foreground patch of a synthesized tumor contains tumor
    real = PatchSampler(split, "real", "liver", CONFIG, np.random.default_rng(5))
    assert not any(real.next_spec().add_tumor for _ in range(10))


def _check_row(row):
    assert list(row) == ROW_COLUMNS or set(row) == set(ROW_COLUMNS)
    for key in ("dsc_mean", "nsd_mean", "sensitivity", "specificity"):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["dsc_low"] <= row["dsc_mean"] <= row["dsc_high"]
    assert row["n_test_tumor"] == 1 and row["n_test_healthy"] == 1
    assert row["test_tumor_kind"] == "phantom_lesion" and row["device"] == "cpu"


@pytest.mark.slow
def test_tiny_benchmark_handcrafted_and_real(cases, tmp_path, engine):
    from db.session import session_scope
    from evaluation.store import latest_results

    results = {}
    for train_on in ("handcrafted", "real"):
        out = tmp_path / train_on
        res = run_benchmark(
            cases,
            train_on=train_on,
            organ="liver",
            config=CONFIG,
            seed=0,
            out_dir=out,
            device="cpu",
            progress=False,
        )
        results[train_on] = res
        _check_row(res.row)
        assert len(res.losses) == CONFIG.iterations
        assert np.mean(res.losses[-4:]) < np.mean(res.losses[:4])  # it learned something
        table = pd.read_csv(out / "benchmark.csv")
        assert table.columns.tolist() == ROW_COLUMNS and len(table) == 1
        assert "PHANTOM LESIONS" in (out / "benchmark.conventions.txt").read_text()
        assert (out / "checkpoint.pt").is_file() and (out / "model.pt").is_file()
    assert results["real"].row["n_train"] == 2 and results["handcrafted"].row["n_train"] == 3
    # both arms are tested on the same held-out volumes
    assert results["real"].per_case.case.tolist() == results["handcrafted"].per_case.case.tolist()

    # resume: the finished checkpoint is reused, no step is re-run, the numbers are identical
    again = run_benchmark(
        cases,
        train_on="real",
        organ="liver",
        config=CONFIG,
        seed=0,
        out_dir=tmp_path / "real",
        device="cpu",
        progress=False,
    )
    assert again.losses == results["real"].losses
    assert again.row["dsc_mean"] == pytest.approx(results["real"].row["dsc_mean"])
    with pytest.raises(BenchmarkStateError, match="another benchmark run"):
        run_benchmark(
            cases,
            train_on="real",
            organ="liver",
            config=CONFIG,
            seed=1,
            out_dir=tmp_path / "real",
            device="cpu",
            progress=False,
        )

    with session_scope(engine) as s:
        for res in results.values():
            store_benchmark(s, res)
    with session_scope(engine) as s:
        stored = latest_results(s, kind="segbench")
        assert [r.name for r in stored] == [
            "segbench handcrafted liver tiny",
            "segbench real liver tiny",
        ]
        assert stored[1].result["summary"]["dsc_mean"] == pytest.approx(
            results["real"].row["dsc_mean"]
        )

"""Evaluation input errors share one shape: InputError(where, problem, fix), a real where.

Each case drives a public function with a bad input (as the CLI and the dashboards do) and
checks the parts; the CLI prints ``str(exc)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from evaluation import radiomics, realism
from evaluation.extractors import get_extractor
from evaluation.frd import frechet_radiomics_distance
from evaluation.segbench.config import preset
from evaluation.segmentation import evaluate_folders, normalized_surface_dice
from evaluation.tables import EvaluationInputError


def _shaped(exc: BaseException) -> InputError:
    assert isinstance(exc, InputError) and isinstance(exc, ValueError)
    assert exc.where is not None and str(exc.where) and exc.problem and exc.fix
    assert str(exc) == f"{exc.where}: {exc.problem}; {exc.fix}"
    return exc


def test_a_missing_folder_keeps_its_message(tmp_path):
    missing = tmp_path / "pred"
    with pytest.raises(EvaluationInputError) as err:
        evaluate_folders(missing, tmp_path)
    # already '<where>: <problem>; <fix>': unchanged, byte for byte
    assert str(_shaped(err.value)) == f"{missing}: is not a folder; pass a folder of mask files"


def test_a_benchmark_checkpoint_of_another_run_keeps_its_message(tmp_path):
    torch = pytest.importorskip("torch")
    from evaluation.segbench.train import BenchmarkStateError, build_model, train

    config = preset("tiny")
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"run_key": "another run"}, ckpt)
    with pytest.raises(BenchmarkStateError) as err:
        train(build_model(config, seed=0), None, config, tmp_path, run_key="this run")
    assert str(_shaped(err.value)) == (
        f"{ckpt}: checkpoint of another benchmark run (different settings, data or seed); "
        "choose another --out or delete this folder"
    )


def test_bad_settings_and_options_name_what_to_change():
    with pytest.raises(EvaluationInputError) as err:
        preset("tiny", iterations=-1)  # `turingct benchmark --iterations -1`
    assert str(_shaped(err.value).where) == "benchmark preset tiny"
    assert "iterations and batch_size >= 1; got BenchConfig(" in str(err.value)
    cube = np.zeros((6, 6, 6), bool)
    cube[2:4, 2:4, 2:4] = True
    with pytest.raises(EvaluationInputError) as err:
        normalized_surface_dice(cube, cube, (1.0, 1.0, 1.0), tolerance_mm=-1)
    assert str(_shaped(err.value).where) == "--tolerance-mm"
    with pytest.raises(EvaluationInputError) as err:
        get_extractor("nope", device="cpu")
    assert str(_shaped(err.value).where) == "--extractor"


def test_too_few_or_identical_tumors_are_input_errors():
    real = pd.DataFrame({"f": [0.0, 2.0, 4.0], "h": [1.0, 3.0, 2.0]})
    with pytest.raises(EvaluationInputError) as err:
        frechet_radiomics_distance(real.iloc[:1], real)
    assert str(_shaped(err.value).where) == "real"
    with pytest.raises(EvaluationInputError) as err:
        frechet_radiomics_distance(pd.DataFrame({"f": [1.0, 1.0]}), real)
    assert _shaped(err.value).problem == "no feature varies in the reference set"
    with pytest.raises(EvaluationInputError) as err:
        radiomics.tsne_embedding(np.zeros((3, 2)))
    _shaped(err.value)
    with pytest.raises(EvaluationInputError) as err:
        realism.grouped_folds(np.array([1, 1, 0, 0]), ["a"] * 4, seed=0)
    assert _shaped(err.value).problem == "every case comes from one source volume"

"""FRD on a feature table whose z-scores and distance are derived by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from evaluation.frd import frechet_radiomics_distance


def test_frd_by_hand():
    # f: real (0, 2, 4) -> mean 2, sd 2 -> z (-1, 0, 1): mean 0, var 1
    #    synthetic (4, 6, 8) -> z (1, 2, 3): mean 2, var 1 -> d^2 = 2^2 + (1 + 1 - 2*1) = 4
    # g is constant in the reference set: dropped
    real = pd.DataFrame({"f": [0.0, 2.0, 4.0], "g": [1.0, 1.0, 1.0]})
    syn = pd.DataFrame({"f": [4.0, 6.0, 8.0], "g": [5.0, 1.0, 2.0]})
    res = frechet_radiomics_distance(real, syn)
    assert res["d2"] == pytest.approx(4.0)
    assert res["frd"] == pytest.approx(math.log(4.0))
    assert (res["n_features"], res["n_real"], res["n_synthetic"]) == (1, 3, 3)


def test_frd_is_scale_free_in_the_reference_units():
    real = pd.DataFrame({"f": [0.0, 2.0, 4.0], "h": [1.0, 3.0, 2.0]})
    syn = pd.DataFrame({"f": [4.0, 6.0, 8.0], "h": [2.0, 2.5, 1.0]})
    scaled = frechet_radiomics_distance(real * [1, 1000], syn * [1, 1000])
    assert scaled["d2"] == pytest.approx(frechet_radiomics_distance(real, syn)["d2"])
    with pytest.raises(ValueError, match=">= 2 tumors"):
        frechet_radiomics_distance(real.iloc[:1], syn)

"""Contract over every registered method that can be built here (STYLE habit 7): keeps the
grid, masks inside the organ, reproducible per seed, replayable from stored params."""

from __future__ import annotations

import numpy as np
import pytest

from synth_backend.registry import available_methods, get_synthesizer
from tests.synth_backend.test_handcrafted import organ_phantom

SPACING = (1.0, 1.0, 1.0)


def _build(name):
    try:
        return get_synthesizer(name)
    except (ImportError, TypeError, FileNotFoundError, ValueError, RuntimeError) as exc:
        pytest.skip(f"{name} cannot be built without extra inputs here: {exc}")


@pytest.fixture(scope="module")
def phantom():
    return organ_phantom(shape=(72, 72, 64), spacing=SPACING)


@pytest.mark.parametrize("name", available_methods())
def test_contract(name, phantom):
    synth = _build(name)  # the learned methods run from the shipped weights
    ct, organ = phantom
    a = synth.synthesize(ct, organ, organ="liver", spacing=SPACING, seed=3, device="cpu",
                         size="small")
    b = synth.synthesize(ct, organ, organ="liver", spacing=SPACING, seed=3, device="cpu",
                         size="small")
    assert a.ct.shape == ct.shape and a.tumor_mask.shape == ct.shape
    assert a.ct.dtype == np.float32 and a.tumor_mask.dtype == np.uint8
    assert a.tumor_mask.any() and not (a.tumor_mask.astype(bool) & ~organ).any()
    assert np.array_equal(a.ct, b.ct) and np.array_equal(a.tumor_mask, b.tumor_mask)
    assert a.params and isinstance(a.params, dict)
    if hasattr(synth, "replay"):
        again = synth.replay(ct, organ, spacing=SPACING, params=a.params, device="cpu")
        assert np.array_equal(again.ct, a.ct)


def test_learning_based_list_matches_the_classes():
    """The torch-free list the app's batch form uses to ask for a checkpoint."""
    import importlib

    from synth_backend.registry import _METHODS, LEARNING_BASED

    for name, target in _METHODS.items():
        module, cls = target.split(":")
        learned = getattr(importlib.import_module(module), cls).learning_based
        assert learned == (name in LEARNING_BASED), name

"""DiffTumor and TumorGen end to end through the CLI, as a user runs them (CPU, tiny sizes).

`turingct train <method>` is stopped by a real SIGINT midway (raised in-process after a chosen
step, so the test is deterministic), re-run to resume from ``last.pt``, then
`turingct synth` / `synth batch --from-catalog` / `synth preview` sample from the checkpoint and
the provenance is checked against the checkpoint file. Uses the session-cached tiny autoencoder
(16 mm patches) of ``_generative_data``; the whole module takes well under a minute of CPU.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from synth_backend.io import load_volume, save_volume, sha256_file
from synth_backend.training import loop
from synth_backend.training.checkpoint import load_checkpoint
from tests.synth_backend._generative_data import limit_torch_threads, make_case, tiny_autoencoder
from turingct.cli import main

one_thread = pytest.fixture(autouse=True, scope="module")(limit_torch_threads)

STEPS = 8  # optimizer steps of each CLI training run
STOP_AT = 3  # the step after which SIGINT arrives
TG_SAMPLE_STEPS = 5  # a non-default TumorGen step count, to see it travel into provenance


@pytest.fixture(autouse=True)
def sigint_handled():
    """Python's own Ctrl-C handler during each test, even when pytest was started in the
    background with SIGINT ignored (the trainer leaves an ignored signal alone)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(training data dir, autoencoder final.pt, one healthy case dir for the catalog)."""
    data, ae = tiny_autoencoder(tmp_path_factory.getbasetemp() / "generative_shared")
    healthy = tmp_path_factory.mktemp("healthy")
    ct, liver, _, affine = make_case(5)
    save_volume(np.rint(ct), affine, healthy / "h00" / "ct.nii.gz", "ct")
    save_volume(liver, affine, healthy / "h00" / "segmentations" / "liver.nii.gz", "mask")
    return data, ae, healthy


def _train_args(method: str, data: Path, ae: Path, out: Path) -> list[str]:
    extra = ["--set", f"sample_steps={TG_SAMPLE_STEPS}"] if method == "tumorgen" else []
    return [
        "train",
        method,
        "--organ",
        "liver",
        "--autoencoder",
        str(ae),
        "--data",
        str(data),
        "--out",
        str(out),
        "--preset",
        "tiny",
        "--device",
        "cpu",
        "--no-progress",
        "--set",
        f"train.steps={STEPS}",
        "--set",
        "train.log_every=1",
        "--set",
        "train.save_every=100",
        *extra,
    ]


def _train_interrupted_then_resumed(
    method: str, data: Path, ae: Path, out: Path, monkeypatch, capsys
) -> Path:
    """Train with a SIGINT after step STOP_AT (exit 130, last.pt at that step), then re-run."""
    original = loop.Trainer._one_step

    def one_step_then_ctrl_c(self, *args, **kwargs):
        terms = original(self, *args, **kwargs)
        if self.step == STOP_AT:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C delivers to the process
        return terms

    args = _train_args(method, data, ae, out)
    with monkeypatch.context() as patch:
        patch.setattr(loop.Trainer, "_one_step", one_step_then_ctrl_c)
        assert main(args) == 130
    err = capsys.readouterr().err
    assert f"interrupted at step {STOP_AT}" in err and "re-run the same command" in err
    # save_every (100) was never reached: last.pt exists only because the stop saved it
    assert load_checkpoint(out / "last.pt", method=method)["step"] == STOP_AT
    assert not (out / "final.pt").exists()

    assert main(args) == 0
    final = out / "final.pt"
    payload = load_checkpoint(final, method=method)
    assert payload["step"] == STEPS and payload["train_seconds"] > 0
    rows = np.genfromtxt(out / "loss.csv", delimiter=",", names=True)
    # one row per step, no step trained twice or skipped across the interruption
    np.testing.assert_array_equal(rows["step"], np.arange(1, STEPS + 1))
    assert np.all(np.isfinite(rows["loss"])) and np.all(np.diff(rows["seconds"]) > 0)
    return final


def _synth(method: str, checkpoint: Path, case: Path, out: Path, seed: int, *extra: str) -> int:
    return main(
        [
            "synth",
            "--method",
            method,
            "--checkpoint",
            str(checkpoint),
            "--organ",
            "liver",
            "--ct",
            str(case / "ct.nii.gz"),
            "--organ-mask",
            str(case / "segmentations" / "liver.nii.gz"),
            "--out",
            str(out),
            "--seed",
            str(seed),
            "--device",
            "cpu",
            *extra,
        ]
    )


def _check_output(out: Path, case: Path, method: str, final: Path, steps: int) -> dict:
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["method"] == method and prov["device"] == "cpu"
    assert prov["checkpoint_hash"] == sha256_file(final)
    assert prov["sampling_steps"] == prov["info"]["sampling_steps"] == steps
    assert prov["info"]["checkpoint_step"] == STEPS
    src = load_volume(case / "ct.nii.gz", "ct")
    new = load_volume(out / "ct.nii.gz", "ct")
    tumor = load_volume(out / "tumor_mask.nii.gz", "mask").array > 0
    liver = load_volume(case / "segmentations" / "liver.nii.gz", "mask").array > 0
    np.testing.assert_allclose(new.affine, src.affine)
    assert new.array.shape == src.array.shape
    assert tumor.any() and not (tumor & ~liver).any()
    assert prov["tumor"]["voxels"] == int(tumor.sum())
    changed = new.array != np.rint(src.array)
    assert changed.any()
    # only voxels near the tumor change: DiffTumor blurs its alpha by sigma <= 4 mm (4 sigma =
    # 16 mm); TumorGen pastes a 3 mm rim blurred by 1 mm
    dist = ndimage.distance_transform_edt(~tumor, sampling=src.spacing)
    assert dist[changed].max() <= 16.0
    return prov


def test_a_second_signal_stops_at_once():
    before = signal.getsignal(signal.SIGINT)
    with loop._DeferredStop() as stop:
        signal.raise_signal(signal.SIGINT)
        assert stop.requested  # the first one only asks the loop to stop after its step
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


@pytest.mark.slow
def test_difftumor_train_interrupt_resume_synth(cohort, tmp_path, monkeypatch, capsys):
    data, ae, _ = cohort
    final = _train_interrupted_then_resumed(
        "difftumor", data, ae, tmp_path / "dt", monkeypatch, capsys
    )
    # the interrupted-and-resumed run equals an uninterrupted one (batches and noise derive
    # from (seed, step); weights, EMA and optimizer state come back from last.pt)
    assert main(_train_args("difftumor", data, ae, tmp_path / "straight")) == 0
    straight = load_checkpoint(tmp_path / "straight" / "final.pt", method="difftumor")
    for key, value in load_checkpoint(final, method="difftumor")["state_dict"].items():
        torch.testing.assert_close(value, straight["state_dict"][key], rtol=1e-5, atol=1e-6)
    case = data / "case00"
    # a training directory is accepted as --checkpoint (final.pt is picked)
    assert _synth("difftumor", tmp_path / "dt", case, tmp_path / "a", 1) == 0
    prov = _check_output(tmp_path / "a", case, "difftumor", final, steps=4)
    assert prov["info"]["sampler"] == "DDPM" and prov["params"]["stage"] == "early"
    assert _synth("difftumor", final, case, tmp_path / "b", 1) == 0
    again = json.loads((tmp_path / "b" / "provenance.json").read_text())
    assert again["outputs"] == prov["outputs"]  # same seed -> byte-identical files
    assert _synth("difftumor", final, case, tmp_path / "c", 1, "--size", "small") == 0
    assert json.loads((tmp_path / "c" / "provenance.json").read_text())["options"] == {
        "size": "small"
    }
    capsys.readouterr()
    # the early-stage model refuses a late-stage size with one line naming both fixes
    assert _synth("difftumor", final, case, tmp_path / "d", 1, "--size", "large") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "late-stage" in err and "--size tiny|small" in err
    assert main(["synth", "preview", str(tmp_path / "a"), "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_tumorgen_train_interrupt_resume_synth_and_catalog_batch(
    cohort, tmp_path, db_url, monkeypatch, capsys
):
    data, ae, healthy = cohort
    final = _train_interrupted_then_resumed(
        "tumorgen", data, ae, tmp_path / "tg", monkeypatch, capsys
    )
    assert load_checkpoint(final, method="tumorgen")["config"]["sample_steps"] == TG_SAMPLE_STEPS
    case = data / "case01"
    # an 8-step model's mask decoder leaves some seeds without a tumor voxel: the CLI refuses
    # those in one line and writes nothing, so try seeds until one gives a tumor
    for seed in range(4, 12):
        out = tmp_path / f"one-{seed}"
        rc = _synth("tumorgen", final, case, out, seed, "--diameter-mm", "10")
        if rc == 0:
            break
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "generated no tumor voxel" in err, err
        assert not out.exists()
    assert rc == 0, "no seed in 4..11 gave a TumorGen tumor"
    prov = _check_output(out, case, "tumorgen", final, steps=TG_SAMPLE_STEPS)
    assert prov["info"]["sampler"] == "RFM-Euler" and prov["params"]["diameter_mm"] == 10
    # the catalog path: import healthy volumes, batch over them, outputs carry provenance
    assert main(["data", "import", "--format", "atlas", str(healthy), "--db", db_url]) == 0
    # the same for a batch: an item without a tumor is a recorded failure, not an output
    for seed in range(2, 10):
        batch = tmp_path / f"batch-{seed}"
        rc = main(
            [
                "synth",
                "batch",
                "--method",
                "tumorgen",
                "--checkpoint",
                str(final),
                "--from-catalog",
                "--db",
                db_url,
                "--organ",
                "liver",
                "--n",
                "1",
                "--out",
                str(batch),
                "--seed",
                str(seed),
                "--device",
                "cpu",
            ]
        )
        outputs = [p.parent for p in batch.glob("*/provenance.json")]
        if rc == 0:
            break
        assert rc == 1 and not outputs
        assert "generated no tumor voxel" in (batch / "failures.jsonl").read_text()
    [out] = outputs
    _check_output(out, healthy / "h00", "tumorgen", final, steps=TG_SAMPLE_STEPS)

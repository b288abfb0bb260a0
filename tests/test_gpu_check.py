"""benchmarks/gpu_check.py in its CPU smoke mode: every section runs and the table lands
between its markers (no GPU in CI; the numbers of a smoke run mean nothing)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_gpu_check_smoke_on_cpu_writes_its_table(tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    gpu_check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_check)
    results = tmp_path / "RESULTS.md"
    results.write_text("# Results\n\nkept\n")
    assert gpu_check.main(["--device", "cpu", "--smoke", "--results", str(results)]) == 0
    text = results.read_text()
    assert text.startswith("# Results\n\nkept\n") and text.count(gpu_check.BEGIN) == 1
    for method in ("handcrafted", "pixel2cancer", "difftumor", "tumorgen"):
        assert f"| {method} | cpu | yes |" in text  # same seed twice -> identical
    for model in ("autoencoder", "difftumor", "tumorgen"):
        assert f"| {model} | tiny | 3 |" in text
    assert "DiffTumor T=4 DDPM" in text and "TumorGen RFM-10" in text
    # a second run replaces its block instead of appending another
    gpu_check.write_results(results, ["again"])
    assert results.read_text().count(gpu_check.BEGIN) == 1 and "again" in results.read_text()

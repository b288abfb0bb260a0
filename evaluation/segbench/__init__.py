"""Segmentation benchmark (Table 2 of the book chapter): a MONAI UNet trained on real tumors or
on healthy CT with on-the-fly synthetic tumors, tested on held-out real tumors (phantom lesions
on the phantom cohort). ``turingct benchmark seg`` runs it; see :func:`run.run_benchmark`."""

from evaluation.segbench.config import PRESETS, TRAIN_ON, BenchConfig, preset
from evaluation.segbench.data import catalog_cases, folder_cases, split_cases
from evaluation.segbench.run import BenchmarkResult, run_benchmark, store_benchmark

__all__ = [
    "PRESETS",
    "TRAIN_ON",
    "BenchConfig",
    "BenchmarkResult",
    "catalog_cases",
    "folder_cases",
    "preset",
    "run_benchmark",
    "split_cases",
    "store_benchmark",
]

"""Every input error of synth_backend, catalog and db is an InputError '<where>: <problem>; <fix>'.

Each case drives a real raise path through a public function with a bad input and checks the
three parts; the ``exact`` cases pin messages that already had that shape (byte-identical to
the text before the errors took the (where, problem, fix) constructor).
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from catalog.batch import items_from_catalog
from catalog.training import cases_from_catalog
from catalog.volumes import CatalogError, import_dataset
from core.errors import InputError
from db.backup import backup
from db.session import session_scope
from synth_backend import datasets
from synth_backend.batch import BatchConfig, items_from_dir
from synth_backend.executors import plan_tasks
from synth_backend.phantom.cohort import COHORT_JSON, CohortError, generate_cohort, load_cohort
from synth_backend.ray_executor import RayExecutor
from synth_backend.training.checkpoint import CheckpointError, resolve_checkpoint
from synth_backend.training.config import ConfigError, build_config, parse_override
from synth_backend.training.data import DataError, PatchSampler, discover_cases, read_manifest


def _shape(exc: BaseException, kind: type[InputError] = InputError) -> InputError:
    assert isinstance(exc, InputError) and isinstance(exc, kind)
    assert str(exc.where) and exc.problem and exc.fix
    assert str(exc) == f"{exc.where}: {exc.problem}; {exc.fix}"
    return exc


def test_config_errors(tmp_path):
    missing = tmp_path / "none.yaml"
    with pytest.raises(ConfigError) as err:
        build_config("autoencoder", config_file=missing)
    assert str(_shape(err.value)) == f"{missing}: config file does not exist; check the path"
    with pytest.raises(ConfigError) as err:
        build_config("autoencoder", overrides=["train.stepz=3"])
    assert _shape(err.value).where == "--set train.stepz=3.train"
    assert err.value.problem == "unknown key 'stepz'"
    # messages that lacked the where or the fix gained it
    with pytest.raises(ConfigError) as err:
        build_config("autoencoder", "huge")
    assert str(_shape(err.value)) == (
        "preset: must be one of ('tiny', 'small', 'full'), got 'huge'; "
        "use --preset tiny, small or full"
    )
    with pytest.raises(ConfigError) as err:
        parse_override("train.lr")
    assert _shape(err.value).where == "--set" and "--set train.lr=1e-4" in err.value.fix
    with pytest.raises(ConfigError) as err:
        build_config("autoencoder", overrides=["train=3"])
    assert "mapping" in _shape(err.value).problem and "'lr'" in err.value.fix


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint(None, method="tumorgen")
    assert str(_shape(err.value)) == (
        "tumorgen: no checkpoint given; train one with `turingct train tumorgen ...` and pass "
        "its final.pt (or the training directory) as --checkpoint"
    )
    with pytest.raises(CheckpointError) as err:
        resolve_checkpoint(tmp_path, method="difftumor")
    assert _shape(err.value).where == tmp_path
    assert err.value.problem == "directory holds no final.pt or last.pt"


def test_training_data_errors(tmp_path):
    with pytest.raises(DataError) as err:
        discover_cases(tmp_path / "none", "liver")
    assert str(_shape(err.value)).startswith(
        f"{tmp_path / 'none'}: data directory does not exist; "
    )
    manifest = tmp_path / "m.csv"
    manifest.write_text("a.nii.gz,b.nii.gz,c.nii.gz,d.nii.gz\n")
    with pytest.raises(DataError) as err:
        read_manifest(manifest)
    assert str(_shape(err.value)) == (
        f"{manifest}: line 1 must be ct,organ_mask[,tumor_mask], got 4 fields; fix the manifest"
    )
    with pytest.raises(DataError) as err:
        PatchSampler([], 32)
    assert str(_shape(err.value)) == (
        "--data: no training case given; pass --data DIR or a manifest"
    )


def test_dataset_layout_errors(tmp_path):
    with pytest.raises(datasets.DatasetLayoutError) as err:
        list(datasets.read_kits(tmp_path))
    assert str(_shape(err.value)) == f"{tmp_path}: no case_xxxxx folders; pass the KiTS data folder"
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("case,ct,organ,organ_mask,organ_label\nc0,ct.nii.gz,liver,m.nii.gz,1;x\n")
    with pytest.raises(datasets.DatasetLayoutError) as err:
        list(datasets.read_manifest(csv_path))
    assert _shape(err.value).where == f"{csv_path}:2" and err.value.fix == "fix that row"


def test_cohort_errors(tmp_path):
    (tmp_path / COHORT_JSON).write_text("{not json")
    with pytest.raises(CohortError) as err:
        load_cohort(tmp_path)
    assert _shape(err.value).where == tmp_path / COHORT_JSON
    other = tmp_path / "other"
    other.mkdir()
    (other / COHORT_JSON).write_text(json.dumps({"seed": 99}))
    with pytest.raises(CohortError) as err:
        generate_cohort(other, n=1, progress=False)
    assert _shape(err.value).fix == "choose another output folder or delete this one"


def test_batch_and_executor_errors(tmp_path):
    with pytest.raises(InputError) as err:
        items_from_dir(tmp_path, "liver")
    assert str(_shape(err.value)) == (
        f"{tmp_path}: no case with ct.nii.gz and segmentations/liver.nii.gz; "
        "check the folder layout"
    )
    with pytest.raises(InputError) as err:
        plan_tasks([], BatchConfig("handcrafted", "liver", tmp_path))
    assert str(_shape(err.value)) == "batch: no input items; check the input folder or catalog"
    with pytest.raises(InputError) as err:
        RayExecutor(max_retries=-1)
    assert str(_shape(err.value)) == "--max-retries: must be >= 0, got -1; pass e.g. 3"


def test_catalog_errors(tmp_path, db_url, engine):
    with session_scope(engine) as s, pytest.raises(CatalogError) as err:
        import_dataset(s, "atlas", tmp_path / "none")
    assert str(_shape(err.value)) == f"{tmp_path / 'none'}: does not exist; check the dataset path"
    with session_scope(engine) as s, pytest.raises(CatalogError) as err:
        import_dataset(s, "weird", tmp_path)
    assert _shape(err.value).where == "--format" and "manifest" in err.value.fix
    # a manifest row without a mask file: the case's CT names where it is
    ct = tmp_path / "ct.nii.gz"
    nib.save(
        nib.Nifti1Image(
            np.random.default_rng(0).integers(-1000, 300, (8, 8, 8)).astype(np.int16), np.eye(4)
        ),
        ct,
    )
    manifest = tmp_path / "m.csv"
    manifest.write_text("case,ct,organ,organ_mask\nc0,ct.nii.gz,liver,\n")
    with session_scope(engine) as s, pytest.raises(CatalogError) as err:
        import_dataset(s, "manifest", manifest)
    assert _shape(err.value).where == ct and err.value.problem == "no mask files given"
    with pytest.raises(InputError) as err:
        items_from_catalog("liver", dataset="d", db_url=db_url)
    assert str(_shape(err.value)) == (
        "catalog: no healthy liver volume in dataset 'd'; import data first "
        "(`turingct data import ...` or `turingct phantom ...`)"
    )
    with pytest.raises(DataError) as err:
        cases_from_catalog(db_url, "liver")
    assert _shape(err.value).where == "catalog"


def test_backup_input_errors(tmp_path):
    missing = tmp_path / "none.db"
    with pytest.raises(InputError) as err:
        backup(f"sqlite:///{missing}")
    assert str(_shape(err.value)) == f"{missing}: database file not found; check --db"
    with pytest.raises(InputError) as err:
        backup("mysql://u:secret@host/db")
    assert "secret" not in str(_shape(err.value)) and "got mysql" in err.value.problem

"""Blinded export: identical headers, geometry and dtype for both arms; nothing arm-revealing."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from sqlalchemy import select

from db.models import Study, StudyCase
from db.session import session_scope
from studies import reading
from studies.accounts import OPERATOR
from studies.admin import create_study
from studies.blinding import HU_CLIP, blinded_affine, sample_box
from tests.studies._catalog import build_catalog, spec_dict


def _cases(engine, study_id):
    with session_scope(engine) as s:
        return s.scalars(select(StudyCase).where(StudyCase.study_id == study_id)).all(), s.get(
            Study, study_id
        ).export_dir


def test_headers_identical_across_arms(study):
    engine, study_id = study
    cases, export_dir = _cases(engine, study_id)
    assert {c.arm.value for c in cases} == {"real", "synthetic"}
    headers, shapes = set(), set()
    for c in cases:
        raw = gzip.decompress(Path(c.blinded_path).read_bytes())
        headers.add(raw[:352])  # the whole NIfTI-1 header + extension flag, byte for byte
        img = nib.load(c.blinded_path)
        shapes.add(img.shape)
        assert img.get_data_dtype() == np.int16
        assert nib.aff2axcodes(img.affine) == ("R", "A", "S")
        np.testing.assert_allclose(img.header.get_zooms(), (1.5, 1.5, 1.5))
        assert img.header["descrip"].item() == b""
        assert (img.header["cal_min"], img.header["cal_max"]) == (15.0, 165.0)  # liver window
        data = np.asarray(img.dataobj)
        assert HU_CLIP[0] <= data.min() and data.max() <= HU_CLIP[1]
    assert len(headers) == 1 and shapes == {(16, 16, 12)}


def test_gzip_stream_and_names_reveal_nothing(study):
    engine, study_id = study
    cases, export_dir = _cases(engine, study_id)
    for c in cases:
        blob = Path(c.blinded_path).read_bytes()
        assert blob[:3] == b"\x1f\x8b\x08" and blob[3] == 0  # no FNAME/FCOMMENT/FEXTRA flags
        assert blob[4:8] == b"\0\0\0\0"  # mtime 0: no creation-time pattern
        assert Path(c.blinded_path).name == f"{c.code}.nii.gz"
        assert re.fullmatch(r"[0-9a-f]{16}", c.code)
    text = " ".join(str(p) for p in Path(export_dir).rglob("*")).lower()
    for word in ("real", "synth", "phantom", "liver", "handcrafted", "t1"):
        assert word not in text.replace(str(Path(export_dir).parent).lower(), "")
    assert Path(export_dir).name == f"study-{study_id:05d}"  # path built from the db id only


def test_tumor_centred_and_case_ids_shuffled(study):
    engine, study_id = study
    cases, _ = _cases(engine, study_id)
    for c in cases:
        mask = np.asarray(nib.load(c.meta["mask_path"]).dataobj)
        idx = np.argwhere(mask)
        centre = (idx.min(0) + idx.max(0)) / 2
        np.testing.assert_allclose(centre, (np.array(mask.shape) - 1) / 2, atol=1.0)
    arms = [c.arm.value for c in sorted(cases, key=lambda c: c.id)]
    assert arms != sorted(arms) or arms != sorted(arms, reverse=True)


def test_different_source_spacing_same_output(engine, tmp_path):
    with session_scope(engine) as s:
        build_catalog(
            s, tmp_path / "c", n_real=3, n_synthetic=3, synthetic_opts={"spacing": (0.8, 0.8, 1.25)}
        )
        st = create_study(
            s, spec_dict(readers=[]), actor=OPERATOR, export_root=tmp_path / "e", progress=False
        )
        paths = [c.blinded_path for c in st.cases]
    imgs = [nib.load(p) for p in paths]
    assert {i.shape for i in imgs} == {(16, 16, 12)}
    for img in imgs:
        np.testing.assert_allclose(img.affine, blinded_affine((16, 16, 12), (1.5,) * 3))


def test_sample_box_is_exact_crop_and_pads():
    arr = np.arange(10 * 10 * 10, dtype=np.float32).reshape(10, 10, 10)
    box = sample_box(arr, (1, 1, 1), (4.5, 4.5, 4.5), (4, 4, 4), (1, 1, 1), order=1, cval=-1)
    np.testing.assert_array_equal(box, arr[3:7, 3:7, 3:7])
    half = sample_box(arr, (1, 1, 1), (0, 0, 0), (4, 4, 4), (2, 2, 2), order=1, cval=-1024)
    assert half[0, 0, 0] == -1024 and half[2, 2, 2] == arr[1, 1, 1]  # 0 + (2 - 1.5) * 2 = 1
    # coarser target spacing: voxel j samples source index centre + (j - 1.5) * 2
    np.testing.assert_array_equal(half[2:, 2:, 2:], arr[1:4:2, 1:4:2, 1:4:2])


def test_export_failure_leaves_nothing(engine, tmp_path):
    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "c", n_real=3, n_synthetic=3)
    spec = spec_dict(readers=[])
    with session_scope(engine) as s:
        vol = s.scalars(select(StudyCase)).first()
        assert vol is None
        # break one synthetic CT on disk: the whole creation must roll back
        from db.models import Origin, Volume

        broken = s.scalars(select(Volume).where(Volume.origin == Origin.SYNTHETIC)).all()
        for v in broken:
            Path(v.ct_path).write_bytes(b"not a nifti")
    with pytest.raises(Exception, match="not a readable NIfTI"), session_scope(engine) as s:
        create_study(s, spec, actor=OPERATOR, export_root=tmp_path / "e", progress=False)
    assert list((tmp_path / "e").iterdir()) == []
    with session_scope(engine) as s:
        assert s.scalar(select(Study)) is None


def test_organ_region_crop_shares_one_shape(engine, tmp_path):
    from studies.blinding import extent_mm, load_case

    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "c", n_real=2, n_synthetic=2)
        spec = spec_dict(
            readers=[],
            cases_per_organ={"real": 2, "synthetic": 2},
            presentation={
                "spacing_mm": 2.0,
                "window": "abdomen",
                "crop": {"around": "organ", "margin_mm": 4},
            },
        )
        st = create_study(s, spec, actor=OPERATOR, export_root=tmp_path / "e", progress=False)
        extents = [
            extent_mm(load_case(c.volume, c.volume.organs[0]).organ, (1.0, 1.0, 2.0))
            for c in st.cases
        ]
        shapes = {nib.load(c.blinded_path).shape for c in st.cases}
    expected = tuple(int(round(v)) for v in (np.max(extents, axis=0) + 8) / 2.0)
    assert shapes == {expected}
    img = nib.load(st.cases[0].blinded_path)
    assert (img.header["cal_min"], img.header["cal_max"]) == (-160.0, 240.0)  # W400/L40


@pytest.mark.realdata
@pytest.mark.slow
def test_real_ircad_case_blinds_like_a_phantom(shared_data, tmp_path):
    """IRCAD patient 17 (LPS, 0.74 x 0.74 x 1.6 mm) and a phantom (RAS, 1 x 1 x 2 mm) come out
    with byte-identical headers; the source files are only read (crops stay in tmp_path)."""
    from types import SimpleNamespace

    from studies.blinding import export_case, load_case
    from studies.spec import parse_spec
    from synth_backend.io import save_volume
    from tests.studies._catalog import make_case

    d = shared_data / "ircadb01_patient17"
    vol = SimpleNamespace(ct_path=str(d / "ct.nii.gz"))
    organ = SimpleNamespace(
        organ="liver",
        volume=vol,
        mask_paths=[str(d / "mask_liver.nii.gz")],
        mask_labels=None,
        tumor_labels=None,
        tumor_paths=[str(d / "mask_livertumor1.nii.gz")],
    )
    pres = parse_spec(
        spec_dict(presentation={"spacing_mm": 1.0, "crop": {"size": [64, 64, 48]}})
    ).presentation
    real = load_case(vol, organ)
    _, ct, tumor, real_bytes = export_case(real, pres, (64, 64, 48), tmp_path / "r", "a" * 16)
    ct_arr, labels = make_case(np.random.default_rng(0))
    p_ct = save_volume(ct_arr, np.diag([1.0, 1.0, 2.0, 1.0]), tmp_path / "p_ct.nii.gz")
    p_lab = save_volume(labels, np.diag([1.0, 1.0, 2.0, 1.0]), tmp_path / "p_lab.nii.gz", "mask")
    pvol = SimpleNamespace(ct_path=str(p_ct))
    porgan = SimpleNamespace(
        organ="liver",
        volume=pvol,
        mask_paths=[str(p_lab)],
        mask_labels=[1, 2],
        tumor_paths=[str(p_lab)],
        tumor_labels=[2],
    )
    _, _, _, phantom_bytes = export_case(
        load_case(pvol, porgan), pres, (64, 64, 48), tmp_path / "p", "b" * 16
    )
    assert gzip.decompress(real_bytes)[:352] == gzip.decompress(phantom_bytes)[:352]
    # tumor 1 (85.6 mL, ~55 mm) is centred and keeps its enhancement (~88 HU in the README)
    idx = np.argwhere(tumor)
    np.testing.assert_allclose((idx.min(0) + idx.max(0)) / 2, (63 / 2, 63 / 2, 47 / 2), atol=1)
    assert 40 < np.median(ct[tumor > 0]) < 140
    assert tumor.sum() > 1000  # mm^3 inside the 64 x 64 x 48 mm crop


def test_multifocal_case_is_centred_on_its_largest_lesion(engine, tmp_path):
    # 4 lesions in the organ's corners: the box of all of them is centred where there is none,
    # which made study creation fail with "tumor falls outside the crop"
    with session_scope(engine) as s:
        build_catalog(
            s,
            tmp_path / "c",
            n_real=3,
            n_synthetic=3,
            radii_mm=[3.0] * 6,
            real_opts={"multifocal": True},
            synthetic_opts={"multifocal": True},
        )
        spec = spec_dict(
            readers=[], presentation={"spacing_mm": 1.5, "crop": {"size": [12, 12, 12]}}
        )
        st = create_study(s, spec, actor=OPERATOR, export_root=tmp_path / "e", progress=False)
        cases = list(st.cases)
    assert len(cases) == 6
    for c in cases:
        lesion = c.meta["lesion"]
        assert lesion["n_lesions"] == 4 and lesion["rank"] == 1 and lesion["rule"] == "largest"
        assert lesion["diameter_mm"] == pytest.approx(c.meta["tumor_diameter_mm"], abs=0.01)
        mask = np.asarray(nib.load(c.meta["mask_path"]).dataobj)
        idx = np.argwhere(mask)
        np.testing.assert_allclose(
            (idx.min(0) + idx.max(0)) / 2, (np.array(mask.shape) - 1) / 2, atol=1.0
        )
        # the viewer's crosshair: recorded by the export, on the chosen lesion of the crop
        voxel = tuple(c.meta["lesion_voxel"])
        assert mask[voxel] and reading.lesion_voxel(c) == voxel
    # same geometry in both arms -> the same crosshair and the same meta keys: nothing by arm
    by_arm = {
        arm: {tuple(c.meta["lesion_voxel"]) for c in cases if c.arm.value == arm}
        for arm in ("real", "synthetic")
    }
    assert by_arm["real"] == by_arm["synthetic"] and len(by_arm["real"]) == 1, by_arm
    assert len({(frozenset(c.meta), frozenset(c.meta["lesion"])) for c in cases}) == 1


def test_crosshair_is_on_the_chosen_lesion_not_the_largest_left_in_the_crop(tmp_path):
    """An organ-region crop cuts the largest lesion to a sliver smaller than a second lesion:
    the largest component of the exported mask is then another lesion than the one chosen, so
    the export must record the chosen one's voxel."""
    from studies.blinding import CaseArrays, export_case
    from studies.spec import Crop, Presentation

    grid = np.stack(np.meshgrid(*[np.arange(40)] * 3, indexing="ij"), axis=-1)
    big = np.linalg.norm(grid - (32, 20, 20), axis=-1) <= 5  # mostly right of the box
    small = np.linalg.norm(grid - (15, 20, 20), axis=-1) <= 3  # wholly inside it
    case = CaseArrays(
        np.full((40,) * 3, 40.0, np.float32),
        np.ones((40,) * 3, bool),
        big | small,
        np.eye(4),
        (1.0, 1.0, 1.0),
    )
    pres = Presentation(spacing_mm=(1.0, 1.0, 1.0), crop=Crop(around="organ", size=(20, 20, 20)))
    record, _, tumor, _ = export_case(case, pres, (20, 20, 20), tmp_path, "c" * 16)
    assert record.lesion.voxels == int(big.sum()) and record.lesion.n_lesions == 2
    # box = source 10..29: the big lesion keeps x 27..29 -> crop x 17..19, y and z 5..15
    assert record.lesion_voxel == (18, 10, 10) and tumor[record.lesion_voxel]
    from_mask = reading.lesion_voxel(StudyCase(meta={"mask_path": str(record.mask_path)}))
    assert from_mask == (5, 10, 10)  # the small lesion: what the fallback alone would show
    recorded = StudyCase(
        meta={"mask_path": str(record.mask_path), "lesion_voxel": list(record.lesion_voxel)}
    )
    assert reading.lesion_voxel(recorded) == (18, 10, 10)


def test_failure_late_in_the_export_leaves_nothing(engine, tmp_path, monkeypatch):
    import studies.admin as admin
    from db.models import User

    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "c", n_real=3, n_synthetic=3)
    real_export, calls = admin.export_case, []

    def fail_on_fifth(*args, **kwargs):  # 4 cases are already written when this fails
        calls.append(1)
        if len(calls) == 5:
            raise admin.StudyError("case x", "injected failure", "none, a test")
        return real_export(*args, **kwargs)

    monkeypatch.setattr(admin, "export_case", fail_on_fifth)
    with pytest.raises(admin.StudyError, match="injected"), session_scope(engine) as s:
        create_study(
            s,
            spec_dict(readers=["newreader"]),
            actor=OPERATOR,
            export_root=tmp_path / "e",
            progress=False,
        )
    assert len(calls) == 5
    assert list((tmp_path / "e").iterdir()) == []  # neither study-* nor the temporary folder
    with session_scope(engine) as s:
        assert s.scalar(select(Study)) is None and s.scalar(select(StudyCase)) is None
        assert s.scalar(select(User).where(User.username == "newreader")) is None


def test_crop_size_has_an_upper_bound_checked_before_allocation(engine, tmp_path):
    import tracemalloc

    from studies.blinding import target_shape
    from studies.errors import SpecError, StudyError
    from studies.spec import parse_spec

    tracemalloc.start()
    with pytest.raises(
        SpecError,
        match=r"crop.size must be at most 512 mm per axis, got "
        r"\[960.0, 96.0, 64.0\] mm",
    ):
        parse_spec(spec_dict(presentation={"crop": {"size": [960, 96, 64]}}))
    with pytest.raises(SpecError, match="at most 512 mm"):  # voxels of a 2 mm grid: 1000 mm
        parse_spec(
            spec_dict(
                presentation={"spacing_mm": 2.0, "crop": {"size": [500, 10, 10], "unit": "voxels"}}
            )
        )
    with pytest.raises(SpecError, match=r"at most 134217728 voxels, got 4800 x 4800 x 3200"):
        parse_spec(spec_dict(presentation={"spacing_mm": 0.02, "crop": {"size": [96, 96, 64]}}))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5_000_000  # refused from the numbers, no array was allocated
    # organ-region crops get their size from the masks: capped the same way
    pres = parse_spec(spec_dict(presentation={"crop": {"around": "organ"}})).presentation
    with pytest.raises(StudyError, match="exceeds 512 mm per axis"):
        target_shape(pres, [np.array([900.0, 100.0, 100.0])])
    assert target_shape(pres, [np.array([80.0, 60.0, 40.0])]) == (100, 80, 60)
    # the bound itself is allowed
    parse_spec(spec_dict(presentation={"spacing_mm": 1.0, "crop": {"size": [512, 512, 512]}}))


def test_handcrafted_tiny_multifocal_output_enters_a_study(engine, db_url, tmp_path):
    """The reported failure, end to end: the hand-crafted method's 'tiny' size makes 3-10
    lesions per volume; such volumes, registered by the batch runner, blind without error.
    (With a 12 mm box, centring on the box of all lesions lands between them and failed.)"""
    from catalog.batch import run_batch
    from db.models import Origin, Volume
    from synth_backend.batch import BatchConfig, items_from_dir
    from synth_backend.io import save_volume
    from tests.synth_backend.test_handcrafted import organ_phantom

    ct, organ = organ_phantom(shape=(48, 48, 32))
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    for i in range(2):
        case = tmp_path / "cohort" / f"case{i}"
        (case / "segmentations").mkdir(parents=True)
        save_volume(ct, affine, case / "ct.nii.gz", "ct")
        save_volume(organ.astype(np.uint8), affine, case / "segmentations" / "liver.nii.gz", "mask")
    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "c", n_real=2, n_synthetic=0)
    summary = run_batch(
        items_from_dir(tmp_path / "cohort", "liver"),
        BatchConfig(
            method="handcrafted",
            organ="liver",
            out_dir=tmp_path / "out",
            seed=4,
            options={"size": "tiny"},
            register=True,
            db_url=db_url,
        ),
        progress=False,
    )
    assert summary.done == 2
    with session_scope(engine) as s:
        st = create_study(
            s,
            spec_dict(
                readers=[],
                cases_per_organ={"real": 2, "synthetic": 2},
                presentation={"spacing_mm": 1.5, "crop": {"size": [12, 12, 12]}},
            ),
            actor=OPERATOR,
            export_root=tmp_path / "e",
            progress=False,
        )
        lesions = [
            c.meta["lesion"]
            for c in st.cases
            if s.get(Volume, c.volume_id).origin == Origin.SYNTHETIC
        ]
    assert len(lesions) == 2 and all(le["n_lesions"] >= 2 for le in lesions), lesions


def test_a_missing_file_is_found_before_anything_is_exported(engine, tmp_path, monkeypatch):
    import studies.admin as admin
    from db.models import Origin, Volume

    with session_scope(engine) as s:
        build_catalog(s, tmp_path / "c", n_real=3, n_synthetic=3)
        gone = s.scalars(select(Volume).where(Volume.origin == Origin.SYNTHETIC)).first()
        Path(gone.ct_path).unlink()
        gone_path = gone.ct_path
    calls = []
    monkeypatch.setattr(admin, "export_case", lambda *a, **k: calls.append(1))
    with (
        pytest.raises(admin.StudyError, match="file of a chosen case is missing") as err,
        session_scope(engine) as s,
    ):
        create_study(
            s, spec_dict(readers=[]), actor=OPERATOR, export_root=tmp_path / "e", progress=False
        )
    assert str(err.value).startswith(gone_path) and calls == []
    assert not (tmp_path / "e").exists()  # refused before the export folder was made

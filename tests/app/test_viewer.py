"""Viewer payload: display range from the window, scrubbed gzip header, identical headers for
every case (blinding), and the serve command's settings."""

from __future__ import annotations

import gzip
import io

import nibabel as nib
import numpy as np
import pytest

from app.viewer import (
    CUSTOM,
    ViewerError,
    Window,
    prepare_volume,
    preset_window,
    read_display_range,
    scrub_gzip_header,
)


def _nifti_gz(data, *, cal=(-160.0, 240.0), name="liver_syn_003.nii", mtime=1_700_000_000,
              cls=nib.Nifti1Image):
    img = cls(np.asarray(data, dtype=np.int16), np.diag([1.0, 1.0, 2.0, 1.0]))
    img.header["cal_min"], img.header["cal_max"] = cal
    raw = img.to_bytes()
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=mtime) as f:
        f.write(raw)
    return buf.getvalue(), raw


def _load(data: bytes) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(data))


def test_window_display_range_is_level_plus_minus_half_width():
    assert Window(400, 40).display_range == (-160.0, 240.0)
    assert Window(150, 90).display_range == (15.0, 165.0)
    assert preset_window("Liver (W150 / L90)") == Window(150.0, 90.0)
    assert preset_window(CUSTOM, (350, 50)).display_range == (-125.0, 225.0)


@pytest.mark.parametrize("bad", [0, -10])
def test_non_positive_width_is_refused(bad):
    with pytest.raises(ViewerError, match="window width must be > 0"):
        Window(bad, 40)


def test_unknown_preset_is_refused():
    with pytest.raises(ViewerError, match="window preset must be one of"):
        preset_window("Brain")


def test_matching_window_sends_the_file_as_is_but_scrubbed():
    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 1000, size=(12, 10, 8))
    gz, _ = _nifti_gz(data)
    assert b"liver_syn_003" in gz[:40]
    out = prepare_volume(gz, Window(400, 40))
    assert b"liver_syn_003" not in out
    assert out[4:8] == b"\x00\x00\x00\x00"  # gzip mtime zeroed
    assert out[3] & 0x08 == 0  # no FNAME flag
    # the deflate stream is untouched (fast path): same length minus the name
    assert len(out) == len(gz) - len(b"liver_syn_003.nii\x00")
    img = _load(out)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)


def test_other_window_patches_the_display_range_only():
    data = np.arange(12 * 10 * 8).reshape(12, 10, 8) - 400
    gz, raw = _nifti_gz(data)
    out = prepare_volume(gz, Window(150, 90))
    img = _load(out)
    assert (float(img.header["cal_min"]), float(img.header["cal_max"])) == (15.0, 165.0)
    np.testing.assert_array_equal(np.asarray(img.dataobj), data)
    new = gzip.decompress(out)
    # only bytes 124..131 (cal_max, cal_min) of the header differ
    diff = [i for i in range(352) if new[i] != raw[i]]
    assert diff and set(diff) <= set(range(124, 132))
    assert new[352:] == raw[352:]


def test_uncompressed_and_nifti2_inputs():
    data = np.ones((4, 4, 4))
    raw = nib.Nifti1Image(data.astype(np.int16), np.eye(4)).to_bytes()
    assert read_display_range(gzip.decompress(prepare_volume(raw, Window(400, 40)))[:348]) \
        == (-160.0, 240.0)
    gz2, _ = _nifti_gz(data, cls=nib.Nifti2Image)
    img = nib.Nifti2Image.from_bytes(gzip.decompress(prepare_volume(gz2, Window(150, 90))))
    assert (float(img.header["cal_min"]), float(img.header["cal_max"])) == (15.0, 165.0)


def test_not_nifti_is_refused():
    with pytest.raises(ViewerError, match="not a NIfTI file"):
        prepare_volume(gzip.compress(b"\x00" * 400), Window(400, 40))
    with pytest.raises(ViewerError, match="not gzip"):
        scrub_gzip_header(b"plain bytes")


def test_two_arms_exported_alike_reach_the_browser_with_identical_headers():
    """Blinding: cases differing only in voxel values (and in file name and export time on
    disk) produce byte-identical gzip and NIfTI headers in what the browser receives."""
    rng = np.random.default_rng(1)
    a, _ = _nifti_gz(rng.integers(-100, 200, (16, 16, 8)), name="real_001.nii", mtime=1)
    b, _ = _nifti_gz(rng.integers(-100, 200, (16, 16, 8)), name="synthetic_7.nii",
                     mtime=999_999)
    for window in (Window(400, 40), Window(150, 90)):
        pa, pb = prepare_volume(a, window), prepare_volume(b, window)
        assert pa[:10] == pb[:10]
        assert gzip.decompress(pa)[:352] == gzip.decompress(pb)[:352]


def test_serve_command_is_headless_without_usage_stats_and_passes_the_db_by_env():
    from app.server import MAIN_SCRIPT, streamlit_command

    argv, env = streamlit_command(8765, "127.0.0.1", "sqlite:////tmp/x.db", base_env={})
    assert argv[argv.index("run") + 1] == str(MAIN_SCRIPT)
    opts = dict(zip(argv[argv.index("run") + 2::2], argv[argv.index("run") + 3::2],
                    strict=True))
    assert opts["--server.port"] == "8765" and opts["--server.headless"] == "true"
    assert opts["--browser.gatherUsageStats"] == "false"
    assert opts["--client.showErrorDetails"] == "none"
    assert env["TURINGCT_DATABASE_URL"] == "sqlite:////tmp/x.db"
    assert "x.db" not in " ".join(argv)  # the URL (maybe with a password) is not in `ps`
    with pytest.raises(ValueError, match="--port must be in 1-65535"):
        streamlit_command(70000)


def test_serve_refuses_a_database_without_schema(tmp_path, capsys):
    from turingct.cli import main

    code = main(["serve", "--db", str(tmp_path / "empty.db"), "--port", "8599"])
    assert code == 2
    assert "turingct db upgrade" in capsys.readouterr().err

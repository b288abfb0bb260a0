"""Reader viewer: window presets, the bytes that leave the server (scrubbed gzip NIfTI-1 behind a
28-byte window header), the components-v2 element (deterministic, nothing but voxels and window),
the reading page's element, the module drawn in headless Chromium (orientation, aspect, window),
and the serve command."""

from __future__ import annotations

import gzip
import io
import re
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from app.slice_viewer import (
    COMPONENT_KEY,
    HEADER_BYTES,
    component_sources,
    unpack_payload,
    viewer_payload,
)
from app.viewer import (
    CUSTOM,
    ViewerError,
    Window,
    prepare_volume,
    preset_window,
    read_display_range,
    scrub_gzip_header,
)


def _nifti_gz(data, *, affine=None, cal=(-160.0, 240.0), name="liver_syn_003.nii",
              mtime=1_700_000_000, cls=nib.Nifti1Image):
    affine = np.diag([1.0, 1.0, 2.0, 1.0]) if affine is None else affine
    img = cls(np.asarray(data, dtype=np.int16), affine)
    img.header["cal_min"], img.header["cal_max"] = cal
    raw = img.to_bytes()
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=mtime) as f:
        f.write(raw)
    return buf.getvalue(), raw


def _volume(payload: bytes) -> bytes:
    """The gzip NIfTI part of a viewer payload."""
    return unpack_payload(payload)[2]


# -- window -----------------------------------------------------------------------------------

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


# -- bytes sent to the browser ----------------------------------------------------------------

def test_gzip_file_is_sent_as_is_but_scrubbed():
    rng = np.random.default_rng(0)
    data = rng.integers(-1000, 1000, size=(12, 10, 8))
    gz, raw = _nifti_gz(data)
    assert b"liver_syn_003" in gz[:40]
    out = prepare_volume(gz)
    assert b"liver_syn_003" not in out
    assert out[4:8] == b"\x00\x00\x00\x00"  # gzip mtime zeroed
    assert out[3] & 0x08 == 0  # no FNAME flag
    # the deflate stream is untouched (no re-compression): same length minus the name
    assert len(out) == len(gz) - len(b"liver_syn_003.nii\x00")
    assert gzip.decompress(out) == raw  # NIfTI header and voxels byte-identical
    assert read_display_range(raw[:348]) == (-160.0, 240.0)  # the export's header, untouched


def test_uncompressed_file_is_compressed_without_time_stamp():
    raw = nib.Nifti1Image(np.ones((4, 4, 4), np.int16), np.eye(4)).to_bytes()
    out = prepare_volume(raw)
    assert out[:2] == b"\x1f\x8b" and out[4:8] == b"\x00\x00\x00\x00"
    assert gzip.decompress(out) == raw
    assert prepare_volume(raw) == out  # deterministic


def test_not_nifti1_is_refused():
    with pytest.raises(ViewerError, match="not a NIfTI-1 file"):
        prepare_volume(gzip.compress(b"\x00" * 400))
    gz2, _ = _nifti_gz(np.ones((4, 4, 4)), cls=nib.Nifti2Image)
    with pytest.raises(ViewerError, match="re-export the study"):
        prepare_volume(gz2)
    with pytest.raises(ViewerError, match="not gzip"):
        scrub_gzip_header(b"plain bytes")


# -- the viewer payload and component ---------------------------------------------------------

def test_payload_carries_exactly_the_scrubbed_volume_and_the_window():
    gz, raw = _nifti_gz(np.arange(6 * 5 * 4).reshape(6, 5, 4) - 50)
    payload = viewer_payload(gz, Window(150, 90), 640)
    # 4-byte magic + three little-endian float64, then the scrubbed gzip file as is (no base64)
    assert payload[:HEADER_BYTES] == b"TCT1" + struct.pack("<ddd", 150.0, 90.0, 640.0)
    assert payload[HEADER_BYTES:] == prepare_volume(gz)
    assert len(payload) == HEADER_BYTES + len(prepare_volume(gz))
    assert gzip.decompress(_volume(payload)) == raw
    assert unpack_payload(payload)[:2] == (Window(150.0, 90.0), 640)
    assert payload == viewer_payload(gz, Window(150, 90), 640)  # deterministic
    with pytest.raises(ViewerError, match="TCT1"):
        unpack_payload(b"XXXX" + payload[4:])


def test_payload_reveals_no_name_time_or_arm():
    """Blinding: two cases exported alike (different file names, export times and voxels) give
    payloads with identical window header, gzip header and NIfTI header; only voxels differ."""
    rng = np.random.default_rng(1)
    a, _ = _nifti_gz(rng.integers(-100, 200, (16, 16, 8)), name="real_001.nii", mtime=1)
    b, _ = _nifti_gz(rng.integers(-100, 200, (16, 16, 8)), name="synthetic_7.nii",
                     mtime=999_999)
    for window in (Window(400, 40), Window(150, 90)):
        pa, pb = viewer_payload(a, window, 640), viewer_payload(b, window, 640)
        assert pa[:HEADER_BYTES + 10] == pb[:HEADER_BYTES + 10]  # window + gzip header
        assert gzip.decompress(_volume(pa))[:352] == gzip.decompress(_volume(pb))[:352]
        for word in (b"real_001", b"synthetic", b"liver_syn", b".nii"):
            assert word not in pa.lower() and word not in pb.lower()
    for text in component_sources().values():
        assert not re.search(r"\b(real|synthetic|arm|code)\b", text.lower())


def test_component_is_small_and_self_contained():
    src = component_sources()
    assert len(src["js"].encode()) < 14_000
    assert "export default function" in src["js"]  # the components-v2 module entry point
    for text in src.values():
        assert not re.search(r"\b(src|href)=|\bimport\s|fetch\(|XMLHttpRequest|WebSocket|eval\(",
                             text)


@pytest.mark.parametrize("height", [0, 100, 5000, 640.0, True])
def test_bad_height_is_refused(height):
    gz, _ = _nifti_gz(np.zeros((4, 4, 4)))
    with pytest.raises(ViewerError, match="viewer height must be"):
        viewer_payload(gz, Window(400, 40), height)


def test_non_finite_window_is_refused():
    gz, _ = _nifti_gz(np.zeros((4, 4, 4)))
    with pytest.raises(ViewerError, match="window must be finite"):
        viewer_payload(gz, Window(400, float("nan")), 640)


# -- the reading page -------------------------------------------------------------------------

def _viewer_element(at):
    """The components-v2 element's proto (bytes payload, name, id, code)."""
    (element,) = at.get("bidi_component")
    return element.proto


def test_reading_page_sends_the_blinded_case_and_the_window_on_screen(app_db):
    from sqlalchemy import select

    from db.models import StudyCase
    from db.session import session_scope
    from tests.app.conftest import new_app

    at = new_app(app_db, "ann").run()
    (start,) = [b for b in at.button if b.label in ("Start", "Continue")]
    start.click()
    at.run()
    assert not at.exception
    first = _viewer_element(at)
    assert first.WhichOneof("data") == "bytes"  # binary on the websocket, no base64, no iframe
    with session_scope(app_db.engine) as s:
        cases = s.execute(select(StudyCase.code, StudyCase.blinded_path)
                          .where(StudyCase.study_id == app_db.study_id)).all()
    shown = gzip.decompress(_volume(first.bytes))
    matches = [code for code, path in cases
               if gzip.decompress(Path(path).read_bytes()) == shown]
    assert len(matches) == 1  # exactly one case's file, byte-identical after decompression
    for code, path in cases:
        assert code.encode() not in first.bytes[:HEADER_BYTES + 10]
        for field in (first.id, first.html_content, first.js_content, first.css_content):
            assert code not in field and path.rsplit("/", 1)[-1] not in field
    assert unpack_payload(first.bytes)[0] == Window(150.0, 90.0)  # the study's default: liver

    at.selectbox(key="case_window_preset").set_value("Abdomen (W400 / L40)")
    at.run()
    again = _viewer_element(at)
    assert unpack_payload(again.bytes)[0] == Window(400.0, 40.0)
    assert _volume(again.bytes) == _volume(first.bytes)  # same volume, only the window changed

    at.button(key="case_answer_unsure").click()  # next case: same element, other voxels
    at.run()
    nxt = _viewer_element(at)
    assert _volume(nxt.bytes) != _volume(first.bytes)
    assert nxt.bytes[:HEADER_BYTES] == again.bytes[:HEADER_BYTES]
    # name, key, element id, markup and code are identical for every case
    for field in ("id", "component_name", "html_content", "css_content", "js_content"):
        assert getattr(nxt, field) == getattr(first, field)
    assert first.id.endswith(COMPONENT_KEY)


# -- the module in the browser ----------------------------------------------------------------

_PROBE_JS = """() => {
  // centroid of bright pixels (> 250) per plane, relative to the drawn image box (0..1)
  const out = {};
  for (const w of tctViewer.views) {
    const b = w.box, c = w.canvas, d = w.ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0, sx = 0, sy = 0;
    for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
      const g = d[4 * (y * c.width + x)];
      if (g > 250) { n++; sx += x; sy += y; }
    }
    const cx = Math.round(b.x + b.W * b.kx * 0.2), cy = Math.round(b.y + b.H * b.ky * 0.8);
    out[tctViewer.NAME[w.f]] = {fx: (sx / n - b.x) / (b.W * b.kx),
                                fy: (sy / n - b.y) / (b.H * b.ky),
                                aspect: (b.H * b.ky) / (b.W * b.kx), label: w.lbl.textContent,
                                grey: d[4 * (cy * c.width + cx)]};
  }
  return out;
}"""

# Mounts the module the way Streamlit's components v2 does: markup + style in an open shadow
# root (isolate_styles) or directly in the page, module imported from a Blob URL, its default
# export called with the raw bytes and the parent element; `show` re-calls it (a rerun).
_MOUNT_JS = """async ([src, b64, shadow]) => {
  const host = document.getElementById('host');
  const root = shadow ? host.attachShadow({mode: 'open'}) : host;
  root.innerHTML = `<style>${src.css}</style>` + src.html;
  const url = URL.createObjectURL(new Blob([src.js], {type: 'text/javascript'}));
  const mod = await import(url);
  window.__show = (b) => mod.default({data: Uint8Array.from(atob(b), c => c.charCodeAt(0)),
                                      parentElement: root});
  window.__show(b64);
}"""


_AXIAL_ZOOM = "[tctViewer.views[2].lbl.textContent, tctViewer.zoom]"


def _b64(payload: bytes) -> str:
    import base64

    return base64.b64encode(payload).decode()


def _open_in_chromium(page, payload: bytes, shadow: bool):
    """Mount the component on a bare page; returns once the first volume is drawn."""
    page.set_content('<body style="margin:0"><div id="host" style="width:1000px"></div></body>')
    page.evaluate(_MOUNT_JS, [component_sources(), _b64(payload), shadow])
    page.wait_for_function("window.tctViewer && tctViewer.loads === 1", timeout=30_000)
    return page.main_frame


@pytest.mark.browser
@pytest.mark.parametrize(("axcodes", "shadow"), [("RAS", False), ("LAS", True)])
def test_module_draws_radiological_planes_in_chromium(axcodes, shadow):
    """A body (40 HU) with one bright block at patient right, anterior, superior: every plane
    shows it where a radiologist expects it, with the pixel aspect of the voxel spacing and the
    window applied (40 HU in W400/L40 is grey 127)."""
    from tests.app import browser

    missing = browser.browser_missing()
    if missing:
        pytest.skip(f"needs Chromium and Playwright: {missing}")
    vol = np.full((64, 48, 32), -1000, np.int16)
    vol[4:60, 4:44, 2:30] = 40
    vol[44:52, 32:40, 22:28] = 1000  # high x = right (RAS), high y = anterior, high z = superior
    affine = np.diag([1.0, 1.0, 2.5, 1.0])
    if axcodes == "LAS":  # x index runs to the patient's left: same anatomy, mirrored array
        vol, affine[0, 0] = vol[::-1].copy(), -1.0
    gz, _ = _nifti_gz(vol, affine=affine)
    payload = viewer_payload(gz, Window(400, 40), 640)
    with browser.chromium_page(viewport=(1000, 640)) as page:
        frame = _open_in_chromium(page, payload, shadow)
        start = frame.evaluate(_PROBE_JS)
        # opens at the volume centre (crosshair slice indices are 1-based)
        assert [start[n]["label"] for n in ("Axial", "Coronal", "Sagittal")] == \
            ["Axial 17/32", "Coronal 25/48", "Sagittal 33/64"]
        # click the block's centre in the axial view: coronal and sagittal jump to it
        frame.evaluate("tctViewer.pos[2] = 24; tctViewer.changed(0, 1, 2)")
        box = frame.evaluate("(() => { const w = tctViewer.views[2], b = w.box, r = w.canvas"
                             ".getBoundingClientRect(); return [r.left, r.top, b.x, b.y, b.kx,"
                             " b.ky]; })()")
        left, top, bx, by, kx, ky = box
        # block centre x = 48 (RAS) shows in screen column 63 - 48 = 15; y = 36 in row 11
        page.mouse.click(left + bx + 15.5 * kx, top + by + 11.5 * ky)
        # rendering is on requestAnimationFrame: poll (a loaded CI machine can be slow)
        frame.wait_for_function("s => tctViewer.views[1].lbl.textContent !== s",
                                arg=start["Coronal"]["label"], timeout=10_000)
        got = frame.evaluate(_PROBE_JS)
        # keys act on the last clicked view; ctrl + wheel and "+" zoom, "r" resets
        for key, label, zoom in (("ArrowUp", "Axial 26/32", 1), ("PageDown", "Axial 16/32", 1),
                                 ("+", "Axial 16/32", 1.25), ("r", "Axial 17/32", 1)):
            page.keyboard.press(key)
            _until(frame, _AXIAL_ZOOM, [label, zoom])
        # a rerun with another window: the same volume is only redrawn, not decoded again
        page.evaluate("b => __show(b)", _b64(viewer_payload(gz, Window(150, 90), 640)))
        _until(frame, "tctViewer.msg.textContent", "W150 / L90")
        frame.evaluate("new Promise(r => requestAnimationFrame(() => r()))")
        windowed = frame.evaluate(_PROBE_JS)
        assert frame.evaluate("tctViewer.loads") == 1
        page.mouse.move(left + bx + 15.5 * kx, top + by + 11.5 * ky)
        page.keyboard.down("Control")
        page.mouse.wheel(0, -100)
        page.keyboard.up("Control")
        _until(frame, _AXIAL_ZOOM, ["Axial 17/32", 1.25])
    # the same anatomy is voxel x = 48 in the RAS file and x = 63 - 48 = 15 in the LAS one
    assert got["Sagittal"]["label"] == ("Sagittal 49/64" if axcodes == "RAS" else
                                        "Sagittal 16/64")
    assert got["Coronal"]["label"] == "Coronal 37/48"
    ax, co, sa = got["Axial"], got["Coronal"], got["Sagittal"]
    assert ax["fx"] < 0.4 and ax["fy"] < 0.4      # patient right on screen left, anterior up
    assert co["fx"] < 0.4 and co["fy"] < 0.4      # patient right on screen left, superior up
    assert sa["fx"] < 0.4 and sa["fy"] < 0.4      # anterior on screen left, superior up
    assert ax["aspect"] == pytest.approx(48 / 64, rel=0.02)
    assert co["aspect"] == pytest.approx(32 * 2.5 / 64, rel=0.02)
    assert sa["aspect"] == pytest.approx(32 * 2.5 / 48, rel=0.02)
    for plane in (ax, co, sa):
        assert 126 <= plane["grey"] <= 128
    for plane in windowed.values():  # 40 HU in W150 / L90: (40 - 15) * 255 / 150 = 42.5
        assert 41 <= plane["grey"] <= 43


# -- the serve command ------------------------------------------------------------------------

def test_serve_command_is_headless_without_usage_stats_and_passes_the_db_by_env():
    from app.server import SERVED_SCRIPT, streamlit_command

    argv, env = streamlit_command(8765, "127.0.0.1", "sqlite:////tmp/x.db", base_env={})
    assert argv[argv.index("run") + 1] == str(SERVED_SCRIPT)  # main.py behind app/asgi.py
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


def _until(frame, js: str, expected, timeout_s: float = 10.0):
    """Poll ``js`` in the page until it equals ``expected`` (fails with the last value)."""
    import time

    deadline = time.monotonic() + timeout_s
    while (value := frame.evaluate(js)) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert value == expected

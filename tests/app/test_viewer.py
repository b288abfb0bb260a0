"""Reader viewer: window presets, the bytes that leave the server (scrubbed gzip NIfTI-1 behind a
"TCT2" settings header), the vote the browser sends back (checked), the components-v2 element
(deterministic, nothing but voxels, settings and the lesion position), the reading page's
element, the module drawn in headless Chromium (orientation, letters, scale bar, aspect,
window presets and drag, lesion at the crosshair, the vote bar's guard), and the serve
command."""

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
    VoteControls,
    component_sources,
    parse_vote,
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


def _nifti_gz(
    data,
    *,
    affine=None,
    cal=(-160.0, 240.0),
    name="liver_syn_003.nii",
    mtime=1_700_000_000,
    cls=nib.Nifti1Image,
):
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
    with pytest.raises(ViewerError, match="window: width must be > 0"):
        Window(bad, 40)


def test_unknown_preset_is_refused():
    with pytest.raises(ViewerError, match="window: preset must be one of"):
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

CONTROLS = VoteControls(
    choices=(("Real", "real"), ("Synthetic", "synthetic"), ("Unsure", "unsure")),
    presets=(("Liver (W150 / L90)", 150.0, 90.0), ("Abdomen (W400 / L40)", 400.0, 40.0)),
    confidence=True,
    min_seconds=1.0,
    idle_seconds=60.0,
    ballot=3,
)


def _settings_block(payload: bytes) -> bytes:
    (n,) = struct.unpack_from("<I", payload, 4)
    return payload[: HEADER_BYTES + n]


def test_payload_carries_exactly_the_scrubbed_volume_and_the_settings():
    gz, raw = _nifti_gz(np.arange(6 * 5 * 4).reshape(6, 5, 4) - 50)
    payload = viewer_payload(gz, Window(150, 90), 640, controls=CONTROLS, focus=(3, 2, 1))
    # 4-byte magic + uint32 length + JSON settings, then the scrubbed gzip file as is
    assert payload[:4] == b"TCT2"
    head = _settings_block(payload)
    assert payload[len(head) :] == prepare_volume(gz)
    assert gzip.decompress(_volume(payload)) == raw
    window, height, _, settings = unpack_payload(payload)
    assert (window, height) == (Window(150.0, 90.0), 640)
    assert settings == {
        "window": [150.0, 90.0],
        "height": 640,
        "focus": [3, 2, 1],
        "choices": [["Real", "real"], ["Synthetic", "synthetic"], ["Unsure", "unsure"]],
        "presets": [["Liver (W150 / L90)", 150.0, 90.0], ["Abdomen (W400 / L40)", 400.0, 40.0]],
        "confidence": True,
        "min_s": 1.0,
        "idle_s": 60.0,
        "ballot": 3,
    }
    assert payload == viewer_payload(
        gz, Window(150, 90), 640, controls=CONTROLS, focus=(3, 2, 1)
    )  # deterministic
    with pytest.raises(ViewerError, match="TCT2"):
        unpack_payload(b"XXXX" + payload[4:])


def test_payload_reveals_no_name_time_or_arm():
    """Blinding: two cases exported alike (different file names, export times and voxels) give
    payloads with identical settings, gzip header and NIfTI header; only voxels (and where
    the lesion is) differ. The choice labels are the same for every case."""
    rng = np.random.default_rng(1)
    a, _ = _nifti_gz(rng.integers(-100, 200, (16, 16, 8)), name="real_001.nii", mtime=1)
    b, _ = _nifti_gz(rng.integers(-100, 200, (16, 16, 8)), name="synthetic_7.nii", mtime=999_999)
    for window in (Window(400, 40), Window(150, 90)):
        pa = viewer_payload(a, window, 640, controls=CONTROLS, focus=(8, 8, 4))
        pb = viewer_payload(b, window, 640, controls=CONTROLS, focus=(8, 8, 4))
        n = len(_settings_block(pa))
        assert pa[: n + 10] == pb[: n + 10]  # settings + gzip header
        assert gzip.decompress(_volume(pa))[:352] == gzip.decompress(_volume(pb))[:352]
        for word in (b"real_001", b"synthetic_7", b"liver_syn", b".nii"):
            assert word not in pa.lower() and word not in pb.lower()
    for text in component_sources().values():
        assert not re.search(r"\b(real|synthetic|arm|code)\b", text.lower())


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (None, "readable form"),
        ({"value": "maybe"}, "answer must be one of"),
        ({"value": "real", "confidence": 9}, "confidence must be 1-5"),
        ({"value": "real", "confidence": True}, "confidence must be 1-5"),
        ({"value": "real", "width": 0, "level": 40, "visible_s": 2, "ballot": 1}, "valid window"),
        (
            {"value": "real", "width": 400, "level": 40, "visible_s": -1, "ballot": 1},
            "valid window",
        ),
        (
            {"value": "real", "width": 400, "level": "40", "visible_s": 1, "ballot": 1},
            "valid window",
        ),
        (
            {"value": "real", "width": 400, "level": 40, "visible_s": float("inf"), "ballot": 1},
            "valid window",
        ),
    ],
)
def test_a_malformed_vote_is_refused_in_one_line(raw, match):
    with pytest.raises(ViewerError, match=match) as err:
        parse_vote(raw, CONTROLS.choices)
    assert "\n" not in str(err.value)


def test_a_vote_is_parsed():
    vote = parse_vote(
        {
            "value": "synthetic",
            "confidence": 4,
            "width": 420,
            "level": 35,
            "visible_s": 7.5,
            "ballot": 2,
        },
        CONTROLS.choices,
    )
    assert (vote.value, vote.confidence, vote.window, vote.visible_seconds, vote.ballot) == (
        "synthetic",
        4,
        Window(420.0, 35.0),
        7.5,
        2,
    )


def test_component_is_small_and_self_contained():
    src = component_sources()
    assert len(src["js"].encode()) < 24_000
    assert "export default function" in src["js"]  # the components-v2 module entry point
    for text in src.values():
        assert not re.search(
            r"\b(src|href)=|\bimport\s|fetch\(|XMLHttpRequest|WebSocket|eval\(", text
        )


@pytest.mark.parametrize("height", [0, 100, 5000, 640.0, True])
def test_bad_height_is_refused(height):
    gz, _ = _nifti_gz(np.zeros((4, 4, 4)))
    with pytest.raises(ViewerError, match="viewer height must be"):
        viewer_payload(gz, Window(400, 40), height)


def test_non_finite_window_is_refused():
    gz, _ = _nifti_gz(np.zeros((4, 4, 4)))
    with pytest.raises(ViewerError, match="window: must be finite"):
        viewer_payload(gz, Window(400, float("nan")), 640)


# -- the reading page -------------------------------------------------------------------------


def _viewer_element(at):
    """The components-v2 element's proto (bytes payload, name, id, code)."""
    (element,) = at.get("bidi_component")
    return element.proto


def test_reading_page_sends_the_blinded_case_and_the_settings(app_db):
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
        cases = s.execute(
            select(StudyCase.code, StudyCase.blinded_path).where(
                StudyCase.study_id == app_db.study_id
            )
        ).all()
    shown = gzip.decompress(_volume(first.bytes))
    matches = [code for code, path in cases if gzip.decompress(Path(path).read_bytes()) == shown]
    assert len(matches) == 1  # exactly one case's file, byte-identical after decompression
    for code, path in cases:
        assert code.encode() not in first.bytes[: HEADER_BYTES + 10]
        for field in (first.id, first.html_content, first.js_content, first.css_content):
            assert code not in field and path.rsplit("/", 1)[-1] not in field
    window, _, _, settings = unpack_payload(first.bytes)
    assert window == Window(150.0, 90.0)  # the study's default: liver
    assert [c[1] for c in settings["choices"]] == ["real", "synthetic", "unsure"]
    assert settings["presets"][0] == ["Liver (W150 / L90)", 150.0, 90.0]
    assert (settings["min_s"], settings["confidence"]) == (0.0, True)
    # the lesion is at the centre of the tumor-centred crop
    dims = nib.Nifti1Image.from_bytes(shown).shape
    assert all(abs(f - (n - 1) / 2) <= 1.5 for f, n in zip(settings["focus"], dims, strict=True))

    at.run()  # a rerun sends the same bytes (the browser gets a cached reference)
    assert _viewer_element(at).bytes == first.bytes

    _answer_on_screen(app_db)  # next case: same element, other voxels, same settings
    at.run()
    nxt = _viewer_element(at)
    assert _volume(nxt.bytes) != _volume(first.bytes)
    same = {k: v for k, v in unpack_payload(nxt.bytes)[3].items() if k != "focus"}
    assert same == {k: v for k, v in settings.items() if k != "focus"}
    # name, key, element id, markup and code are identical for every case
    for field in ("id", "component_name", "html_content", "css_content", "js_content"):
        assert getattr(nxt, field) == getattr(first, field)
    assert first.id.endswith(COMPONENT_KEY)


def _answer_on_screen(db):
    from db.models import User
    from db.session import session_scope
    from studies.reading import current_case, submit_answer

    with session_scope(db.engine) as s:
        user = s.get(User, db.users["ann"])
        view = current_case(s, user, db.study_id)
        submit_answer(s, user, view.code, value="unsure", idempotency_key=view.idempotency_key)


# -- the module in the browser ----------------------------------------------------------------

_PROBE_JS = """() => {
  // centroid of bright pixels (> 250) per plane, relative to the drawn image box (0..1)
  const out = {};
  for (const w of tctViewer.views) {
    const b = w.box, c = w.canvas, d = w.ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0, sx = 0, sy = 0;
    for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
      const g = d[4 * (y * c.width + x)], blue = d[4 * (y * c.width + x) + 2];
      if (g > 250 && blue > 250) { n++; sx += x; sy += y; }   // white, not the yellow letters
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
  window.__votes = [];
  window.__show = (b) => mod.default({data: Uint8Array.from(atob(b), c => c.charCodeAt(0)),
                                      parentElement: root,
                                      setTriggerValue: (name, v) => __votes.push([name, v])});
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
    payload = viewer_payload(gz, Window(400, 40), 640, controls=CONTROLS)
    with browser.chromium_page(viewport=(1000, 640)) as page:
        frame = _open_in_chromium(page, payload, shadow)
        start = frame.evaluate(_PROBE_JS)
        # opens at the volume centre (crosshair slice indices are 1-based)
        assert [start[n]["label"] for n in ("Axial", "Coronal", "Sagittal")] == [
            "Axial 17/32",
            "Coronal 25/48",
            "Sagittal 33/64",
        ]
        # click the block's centre in the axial view: coronal and sagittal jump to it
        frame.evaluate("tctViewer.pos[2] = 24; tctViewer.changed(0, 1, 2)")
        box = frame.evaluate(
            "(() => { const w = tctViewer.views[2], b = w.box, r = w.canvas"
            ".getBoundingClientRect(); return [r.left, r.top, b.x, b.y, b.kx,"
            " b.ky]; })()"
        )
        left, top, bx, by, kx, ky = box
        # block centre x = 48 (RAS) shows in screen column 63 - 48 = 15; y = 36 in row 11
        page.mouse.click(left + bx + 15.5 * kx, top + by + 11.5 * ky)
        # rendering is on requestAnimationFrame: poll (a loaded CI machine can be slow)
        frame.wait_for_function(
            "s => tctViewer.views[1].lbl.textContent !== s",
            arg=start["Coronal"]["label"],
            timeout=10_000,
        )
        got = frame.evaluate(_PROBE_JS)
        # keys act on the last clicked view; ctrl + wheel and "+" zoom, "r" resets
        for key, label, zoom in (
            ("ArrowUp", "Axial 26/32", 1),
            ("PageDown", "Axial 16/32", 1),
            ("+", "Axial 16/32", 1.25),
            ("r", "Axial 17/32", 1),
        ):
            page.keyboard.press(key)
            _until(frame, _AXIAL_ZOOM, [label, zoom])
        # a rerun with the same volume is not decoded again; the preset list changes the window
        assert frame.evaluate("tctViewer.wl.textContent") == "W 400 / L 40"
        page.evaluate("b => __show(b)", _b64(payload))
        frame.locator("select.pre").select_option(label="Liver (W150 / L90)")
        _until(frame, "tctViewer.wl.textContent", "W 150 / L 90")
        frame.evaluate("new Promise(r => requestAnimationFrame(() => r()))")
        windowed = frame.evaluate(_PROBE_JS)
        assert frame.evaluate("tctViewer.loads") == 1
        page.mouse.move(left + bx + 15.5 * kx, top + by + 11.5 * ky)
        page.keyboard.down("Control")
        page.mouse.wheel(0, -100)
        page.keyboard.up("Control")
        _until(frame, _AXIAL_ZOOM, ["Axial 17/32", 1.25])
    # the same anatomy is voxel x = 48 in the RAS file and x = 63 - 48 = 15 in the LAS one
    assert got["Sagittal"]["label"] == ("Sagittal 49/64" if axcodes == "RAS" else "Sagittal 16/64")
    assert got["Coronal"]["label"] == "Coronal 37/48"
    ax, co, sa = got["Axial"], got["Coronal"], got["Sagittal"]
    assert ax["fx"] < 0.4 and ax["fy"] < 0.4  # patient right on screen left, anterior up
    assert co["fx"] < 0.4 and co["fy"] < 0.4  # patient right on screen left, superior up
    assert sa["fx"] < 0.4 and sa["fy"] < 0.4  # anterior on screen left, superior up
    assert ax["aspect"] == pytest.approx(48 / 64, rel=0.02)
    assert co["aspect"] == pytest.approx(32 * 2.5 / 64, rel=0.02)
    assert sa["aspect"] == pytest.approx(32 * 2.5 / 48, rel=0.02)
    for plane in (ax, co, sa):
        assert 126 <= plane["grey"] <= 128
    for plane in windowed.values():  # 40 HU in W150 / L90: (40 - 15) * 255 / 150 = 42.5
        assert 41 <= plane["grey"] <= 43


def _yellow_near(frame, plane: int, fx: float, fy: float) -> int:
    """Yellow overlay pixels (letters, scale bar) in a 40 px square of a view around (fx, fy),
    fractions of the canvas."""
    return frame.evaluate(
        """([p, fx, fy]) => {
      const c = tctViewer.views[p].canvas, x0 = Math.max(0, Math.round(c.width * fx) - 20);
      const y0 = Math.max(0, Math.round(c.height * fy) - 20);
      const d = tctViewer.views[p].ctx.getImageData(x0, y0, 40, 40).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i] > 200 && d[i + 1] > 200 && d[i + 2] < 80) n++;
      return n;
    }""",
        [plane, fx, fy],
    )


@pytest.mark.browser
def test_viewer_reads_like_a_pacs_and_guards_the_vote_in_chromium():
    """Letters on every view, a mm scale bar, the crosshair on the lesion, right-drag
    window / level without any server round trip, and the vote bar: disabled until the case
    was on screen for min_s, one vote per click or key press (a double press votes once),
    re-armed by a new ballot, and on-screen time that stops while the tab is hidden or the
    reader idle."""
    from tests.app import browser

    missing = browser.browser_missing()
    if missing:
        pytest.skip(f"needs Chromium and Playwright: {missing}")
    vol = np.full((64, 48, 32), 40, np.int16)
    gz, _ = _nifti_gz(vol, affine=np.diag([1.0, 1.0, 2.0, 1.0]))
    controls = VoteControls(
        choices=CONTROLS.choices,
        presets=CONTROLS.presets,
        confidence=True,
        min_seconds=30.0,
        idle_seconds=30.0,
        ballot=1,
    )
    payload = viewer_payload(gz, Window(400, 40), 640, controls=controls, focus=(10, 20, 5))
    with browser.chromium_page(viewport=(1000, 640)) as page:
        frame = _open_in_chromium(page, payload, shadow=True)
        assert frame.evaluate("tctViewer.pos") == [10, 20, 5]  # the lesion, not the centre
        # the buttons wait for min_s (30 s here) on screen; a key press before does nothing
        assert frame.evaluate(
            "[tctViewer.seen < 30000, [...document.getElementById('host')"
            ".shadowRoot.querySelectorAll('button.choice')]"
            ".every(b => b.disabled)]"
        ) == [True, True]
        page.mouse.move(500, 300)
        page.keyboard.press("1")
        page.wait_for_timeout(100)
        assert frame.evaluate("__votes.length") == 0
        # the same case with a 1 s minimum (a rerun, same ballot): enabled after 1 s on screen
        controls = VoteControls(**{**controls.__dict__, "min_seconds": 1.0})
        page.evaluate(
            "b => __show(b)",
            _b64(viewer_payload(gz, Window(400, 40), 640, controls=controls, focus=(10, 20, 5))),
        )
        for plane in range(3):  # letters at the left / right / top / bottom edge midpoints
            for fx, fy in ((0.01, 0.5), (0.99, 0.5), (0.5, 0.02), (0.5, 0.98)):
                assert _yellow_near(frame, plane, fx, fy) > 5, (plane, fx, fy)
        # the window label is whole and inside the tool bar, also in a narrow column
        for width in (1000, 520):
            frame.evaluate(f"document.getElementById('host').style.width = '{width}px'")
            page.wait_for_timeout(100)
            assert frame.evaluate("""() => { const l = tctViewer.wl, r = l.getBoundingClientRect(),
                t = l.closest('.tct').getBoundingClientRect();
                return l.scrollWidth <= l.clientWidth + 1 && r.right <= t.right &&
                       r.left >= t.left && l.textContent === 'W 400 / L 40'; }""")
        frame.evaluate("document.getElementById('host').style.width = '1000px'")
        page.wait_for_timeout(100)
        scales = frame.evaluate("tctViewer.views.map(w => w.scale)")
        assert all(mm in (5, 10, 20) for mm in scales), scales
        _until(frame, "tctViewer.here >= 1000 && tctViewer.armed", True)
        # right-drag: window / level in the browser
        box = frame.evaluate(
            "(() => { const r = tctViewer.views[2].canvas"
            ".getBoundingClientRect(); return [r.left, r.top, r.width]; })()"
        )
        x, y = box[0] + box[2] / 2, box[1] + 100
        page.mouse.move(x, y)
        page.mouse.down(button="right")
        page.mouse.move(x + 50, y + 20, steps=5)
        page.mouse.up(button="right")
        win = frame.evaluate("tctViewer.win")
        assert win["width"] > 400 and win["level"] > 40
        assert frame.evaluate("tctViewer.pos") == [10, 20, 5]  # the drag did not move it
        # a double key press (60 ms apart) votes once, with the window on screen
        page.keyboard.press("2")
        page.wait_for_timeout(60)
        page.keyboard.press("2")
        page.wait_for_timeout(300)
        votes = frame.evaluate("__votes")
        assert len(votes) == 1 and votes[0][0] == "vote"
        vote = votes[0][1]
        assert (vote["value"], vote["ballot"], vote["confidence"]) == ("synthetic", 1, None)
        assert (vote["width"], vote["level"]) == (win["width"], win["level"])
        assert 1.0 <= vote["visible_s"] < 30
        assert frame.evaluate("tctViewer.armed") is False
        # the server answers with a new ballot (e.g. after a refused vote): armed again
        again = viewer_payload(
            gz,
            Window(400, 40),
            640,
            focus=(10, 20, 5),
            controls=VoteControls(**{**controls.__dict__, "ballot": 2, "idle_seconds": 1.5}),
        )
        page.evaluate("b => __show(b)", _b64(again))
        _until(frame, "tctViewer.armed", True)
        assert frame.evaluate("tctViewer.loads") == 1  # not decoded again
        # time on screen stops while the tab is hidden, and when the reader is idle
        page.mouse.move(510, 310)
        frame.evaluate("""() => { Object.defineProperty(document, 'visibilityState',
                                    {get: () => 'hidden', configurable: true});
                                  document.dispatchEvent(new Event('visibilitychange')); }""")
        hidden_from = frame.evaluate("tctViewer.seen")
        page.wait_for_timeout(800)
        assert frame.evaluate("tctViewer.seen") - hidden_from < 250
        frame.evaluate("() => { delete document.visibilityState; }")
        page.mouse.move(520, 320)
        page.wait_for_timeout(2500)  # idle_s = 1.5 s: counting stops after it
        idle_from = frame.evaluate("tctViewer.seen")
        page.wait_for_timeout(800)
        assert frame.evaluate("tctViewer.seen") == idle_from
        assert "paused" in frame.evaluate("tctViewer.msg.textContent")
        page.mouse.move(530, 330)  # the reader is back
        page.wait_for_timeout(500)
        assert frame.evaluate("tctViewer.seen") > idle_from
        assert frame.evaluate("tctViewer.msg.textContent") == ""
        # a click votes once; a second click 200 ms later reaches a disabled button
        frame.locator("button.conf", has_text="4").click()
        button = frame.locator("button.choice", has_text="Real (1)")
        b = button.bounding_box()
        page.mouse.click(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
        page.wait_for_timeout(200)
        page.mouse.click(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2)
        page.wait_for_timeout(200)
        votes = frame.evaluate("__votes")
        assert len(votes) == 2 and votes[1][1]["value"] == "real"
        assert (votes[1][1]["ballot"], votes[1][1]["confidence"]) == (2, 4)
        page.screenshot(path=str(browser.ARTIFACTS / "viewer-module.png"))


# -- the serve command ------------------------------------------------------------------------


def test_serve_command_is_headless_without_usage_stats_and_passes_the_db_by_env():
    from app.server import SERVED_SCRIPT, streamlit_command

    argv, env = streamlit_command(8765, "127.0.0.1", "sqlite:////tmp/x.db", base_env={})
    assert argv[argv.index("run") + 1] == str(SERVED_SCRIPT)  # main.py behind app/asgi.py
    opts = dict(
        zip(argv[argv.index("run") + 2 :: 2], argv[argv.index("run") + 3 :: 2], strict=True)
    )
    assert opts["--server.port"] == "8765" and opts["--server.headless"] == "true"
    assert opts["--browser.gatherUsageStats"] == "false"
    assert opts["--client.showErrorDetails"] == "none"
    assert env["TURINGCT_DATABASE_URL"] == "sqlite:////tmp/x.db"
    assert "x.db" not in " ".join(argv)  # the URL (maybe with a password) is not in `ps`
    with pytest.raises(ValueError, match="--port: must be in 1-65535"):
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

"""Viewer benchmark in the real browser: time to open a 256 x 256 x 128 case, time per slice.

Builds two 256 x 256 x 128 int16 CT crops from the real portal-venous CT in
``../shared/data/hcc_tace_seg_048`` (resampled to the crop size, written to a temporary folder
outside the repository), serves them with Streamlit through the app's own viewer path
(``app.slice_viewer.show_slice_viewer``, as on the reading page), and drives headless Chromium
(software rendering) with Playwright:

- open: click "Next case" -> the viewer (a components-v2 element) has drawn the new case's three
  planes (server: read + payload; websocket transfer of the raw bytes; React; gzip decode; NIfTI
  parse; first draw). Also reported: the part inside the viewer module (bytes handed to the
  module -> first draw).
- slice change: mouse-wheel events dispatched on the axial canvas, each timed until the next
  animation frame (client only; the benchmark checks that no request leaves the page), plus the
  JavaScript draw time per change.

Usage: ``python benchmarks/viewer.py [--repeats 5] [--slices 50]``; prints a Markdown table to
paste into ``benchmarks/RESULTS.md`` (section "Viewer").
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO.parent / "shared" / "data" / "hcc_tace_seg_048" / "ct.nii.gz"
SHAPE = (256, 256, 128)
sys.path.insert(0, str(REPO))

from tests.app.browser import CHROMIUM, CHROMIUM_ARGS, browser_missing, free_port  # noqa: E402


def make_cases(out: Path, n: int = 2) -> list[Path]:
    """``n`` 256 x 256 x 128 int16 HU crops (different in-plane offsets) of the source CT."""
    img = nib.as_closest_canonical(nib.load(SOURCE))
    ct = np.asarray(img.dataobj, dtype=np.float32)
    paths = []
    for i in range(n):
        off = 40 + 40 * i
        sub = ct[off : off + 360, off : off + 360, :]
        zoom = [t / s for t, s in zip(SHAPE, sub.shape, strict=True)]
        crop = np.rint(ndimage.zoom(sub, zoom, order=1)).astype(np.int16)
        spacing = [
            float(z) * s / t
            for z, s, t in zip(img.header.get_zooms(), sub.shape, SHAPE, strict=True)
        ]
        out_img = nib.Nifti1Image(crop, np.diag([*spacing, 1.0]))
        out_img.header["cal_min"], out_img.header["cal_max"] = -160.0, 240.0
        path = out / f"case{i}.nii.gz"
        nib.save(out_img, path)
        paths.append(path)
    return paths


# the viewer module counts the volumes it has decoded and drawn (tctViewer.loads)
READY_JS = "(n) => !!(window.tctViewer && tctViewer.loads > n)"
WHEEL_JS = """async (n) => {
  const c = tctViewer.views[2].canvas, lbl = tctViewer.views[2].lbl;
  const r = c.getBoundingClientRect(), before = lbl.textContent;
  let t = 0, draw = 0, changed = false;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    c.dispatchEvent(new WheelEvent('wheel', {deltaY: i < n / 2 ? 100 : -100, bubbles: true,
      cancelable: true, clientX: r.left + r.width / 2, clientY: r.top + r.height / 2}));
    await new Promise(requestAnimationFrame);
    t += performance.now() - t0;
    draw += tctViewer.drawMs;
    if (i === 0) changed = lbl.textContent !== before;
  }
  return {frame_ms: t / n, draw_ms: draw / n, changed};
}"""


CLICK_JS = """() => document.addEventListener('click', () => {
  window.__clicked = performance.timeOrigin + performance.now(); }, true)"""


def run(repeats: int, slices: int, extra_args: tuple[str, ...] = ()) -> dict:
    """Open ``repeats`` cases (after one warm-up) and scroll ``slices`` wheel events in each.

    Times come from the browser's own clock (``performance.timeOrigin``-based), so
    Playwright's automation latency is not in them;
    ``wall_s`` is the same open seen from Python (click sent -> ready noticed) for reference.
    """
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="turingct-bench-") as tmp:
        cases = make_cases(Path(tmp))
        size_mb = np.mean([p.stat().st_size for p in cases]) / 1e6
        port = free_port()
        env = dict(os.environ, TURINGCT_BENCH_DIR=tmp, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(Path(__file__).with_name("_viewer_page.py")),
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        keys = ("open_ms", "to_module_ms", "module_ms", "wall_s", "frame_ms", "draw_ms")
        res: dict = {"payload_mb": size_mb, "requests_while_scrolling": 0, **{k: [] for k in keys}}
        try:
            for _ in range(200):
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{base}/_stcore/health", timeout=2),
                ):
                    break
                time.sleep(0.3)
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *extra_args]
                )
                page = browser.new_page(viewport={"width": 1400, "height": 950})
                requests: list[str] = []
                page.on("request", lambda req: requests.append(req.url))
                page.goto(base)
                page.wait_for_function(READY_JS, arg=0, timeout=120_000)
                page.evaluate(CLICK_JS)
                viewer = page
                for r in range(repeats + 1):
                    loads = page.evaluate("tctViewer.loads")
                    t0 = time.perf_counter()
                    page.get_by_role("button", name="Next case").click()
                    page.wait_for_function(READY_JS, arg=loads, timeout=120_000)
                    wall = time.perf_counter() - t0
                    if r:  # the first switch warms caches
                        clicked, drawn, module = page.evaluate(
                            "[window.__clicked, tctViewer.drawnAt, tctViewer.openMs]"
                        )
                        res["wall_s"].append(wall)
                        res["open_ms"].append(drawn - clicked)
                        res["to_module_ms"].append(drawn - module - clicked)
                        res["module_ms"].append(module)
                    sent = len(requests)
                    wheel = viewer.evaluate(WHEEL_JS, slices)
                    if not wheel["changed"]:
                        raise RuntimeError("mouse wheel did not change the axial slice")
                    res["requests_while_scrolling"] += len(requests) - sent
                    res["frame_ms"].append(wheel["frame_ms"])
                    res["draw_ms"].append(wheel["draw_ms"])
                name = "viewer-benchmark" + ("-nogpu" if extra_args else "") + ".png"
                page.screenshot(path=str(REPO / "test-artifacts" / name))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return res


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slices", type=int, default=50)
    parser.add_argument(
        "--disable-gpu",
        action="store_true",
        help="also pass --disable-gpu to Chromium (CPU raster and compositing "
        "instead of SwiftShader GL)",
    )
    args = parser.parse_args()
    missing = browser_missing()
    if missing or not SOURCE.is_file():
        print(f"cannot run: {missing or f'{SOURCE} missing'}", file=sys.stderr)
        return 2
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    load = os.getloadavg()
    res = run(args.repeats, args.slices, ("--disable-gpu",) if args.disable_gpu else ())
    print(
        f"Chromium flags: {' '.join(CHROMIUM_ARGS)}{' --disable-gpu' * args.disable_gpu}; "
        f"load average before / after: {load[0]:.1f} / {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} CPUs\n"
    )
    print("| measure | median | min | max | n |\n|---|---|---|---|---|")
    for name, vals in (
        ("open a 256x256x128 case: click -> first draw (ms)", res["open_ms"]),
        (
            "- click -> bytes handed to the viewer (server, websocket, React; ms)",
            res["to_module_ms"],
        ),
        ("- bytes -> first draw (gzip decode, NIfTI parse, draw; ms)", res["module_ms"]),
        ("open as seen by Playwright (s, incl. automation latency)", res["wall_s"]),
        ("slice change: wheel event -> next frame (ms)", res["frame_ms"]),
        ("slice change: JS draw work (ms)", res["draw_ms"]),
    ):
        print(
            f"| {name} | {statistics.median(vals):.1f} | {min(vals):.1f} | "
            f"{max(vals):.1f} | {len(vals)} |"
        )
    print(
        f"\npayload per case: {res['payload_mb']:.1f} MB (.nii.gz, int16); requests sent "
        f"while scrolling: {res['requests_while_scrolling']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Viewer benchmark in the real browser: time to open a 256 x 256 x 128 case, time per slice.

Builds two 256 x 256 x 128 int16 CT crops from the real portal-venous CT in
``../shared/data/hcc_tace_seg_048`` (resampled to the crop size, abdomen window in the header,
written to a temporary folder outside the repository), serves them with Streamlit through the
app's own viewer path (``app.viewer.prepare_volume`` + ``show_viewer``), and drives headless
Chromium (software WebGL) with Playwright:

- open: click "Next case" -> NiiVue in the new iframe reports the new volume's matrix size
  (server preparation + websocket transfer + NIfTI decode + first draw);
- slice change: mouse-wheel events dispatched on the canvas, timed in the page until the
  following animation frame (client only, no server round trip).

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
        sub = ct[off:off + 360, off:off + 360, :]
        zoom = [t / s for t, s in zip(SHAPE, sub.shape, strict=True)]
        crop = np.rint(ndimage.zoom(sub, zoom, order=1)).astype(np.int16)
        spacing = [float(z) * s / t for z, s, t in zip(img.header.get_zooms(), sub.shape,
                                                         SHAPE, strict=True)]
        out_img = nib.Nifti1Image(crop, np.diag([*spacing, 1.0]))
        out_img.header["cal_min"], out_img.header["cal_max"] = -160.0, 240.0
        path = out / f"case{i}.nii.gz"
        nib.save(out_img, path)
        paths.append(path)
    return paths


WHEEL_JS = """async (n) => {
  const c = document.querySelector('canvas');
  const r = c.getBoundingClientRect();
  const x = r.left + r.width * 0.25, y = r.top + r.height * 0.75;  // axial tile
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    c.dispatchEvent(new WheelEvent('wheel', {deltaY: 100, clientX: x, clientY: y,
                                             bubbles: true, cancelable: true}));
    await new Promise(requestAnimationFrame);
  }
  return (performance.now() - t0) / n;
}"""


def run(repeats: int, slices: int) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="turingct-bench-") as tmp:
        cases = make_cases(Path(tmp))
        size_mb = np.mean([p.stat().st_size for p in cases]) / 1e6
        port = free_port()
        env = dict(os.environ, TURINGCT_BENCH_DIR=tmp, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(Path(__file__).with_name(
                "_viewer_page.py")), "--server.port", str(port), "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(200):
                with contextlib.suppress(OSError), \
                        urllib.request.urlopen(f"{base}/_stcore/health", timeout=2):
                    break
                time.sleep(0.3)
            opens, per_slice = [], []
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 950})
                page.goto(base)
                matrix = "matrix size: 256 x 256 x 128"
                page.frame_locator("iframe").first.get_by_text(matrix).wait_for(
                    timeout=120_000)
                for r in range(repeats + 1):
                    page.evaluate("window.__old = document.querySelector('iframe')")
                    t0 = time.perf_counter()
                    page.get_by_role("button", name="Next case").click()
                    # the case's viewer is a new iframe (new key): wait for it, then its load
                    page.wait_for_function("document.querySelector('iframe') && "
                                           "document.querySelector('iframe') !== window.__old",
                                           timeout=120_000)
                    page.frame_locator("iframe").first.get_by_text(matrix).wait_for(
                        timeout=120_000)
                    if r:  # the first switch warms caches
                        opens.append(time.perf_counter() - t0)
                    viewer = page.query_selector("iframe").content_frame()
                    per_slice.append(viewer.evaluate(WHEEL_JS, slices))
                page.screenshot(path=str(REPO / "test-artifacts" / "viewer-benchmark.png"))
                browser.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    return {"payload_mb": size_mb, "open_s": opens, "slice_ms": per_slice}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--slices", type=int, default=50)
    args = parser.parse_args()
    missing = browser_missing()
    if missing or not SOURCE.is_file():
        print(f"cannot run: {missing or f'{SOURCE} missing'}", file=sys.stderr)
        return 2
    (REPO / "test-artifacts").mkdir(exist_ok=True)
    res = run(args.repeats, args.slices)
    print("| measure | median | min | max | n |\n|---|---|---|---|---|")
    for name, vals in (("open a 256x256x128 case (s)", res["open_s"]),
                       ("slice change, mouse wheel (ms)", res["slice_ms"])):
        print(f"| {name} | {statistics.median(vals):.3f} | {min(vals):.3f} | {max(vals):.3f} "
              f"| {len(vals)} |")
    print(f"\npayload per case: {res['payload_mb']:.1f} MB (.nii.gz, int16)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

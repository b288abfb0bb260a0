"""Helpers for the real-browser tests and the viewer benchmark: start `turingct serve`, launch
Debian's headless Chromium through Playwright, build a small study."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = os.environ.get("TURINGCT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TURINGCT = [sys.executable, "-c", "import sys; from turingct.cli import main; sys.exit(main())"]
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (`pip install playwright`)"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return (
            f"Chromium not found at {CHROMIUM} (`apt-get install -y chromium`, or set "
            "TURINGCT_CHROMIUM)"
        )
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(db_url: str, log_path: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """Run `turingct serve` on a free port; yields the base URL; stops the server after."""
    port = free_port()
    argv = [*TURINGCT, "serve", "--port", str(port), "--address", "127.0.0.1", "--db", db_url]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"`turingct serve` exited with {proc.returncode}; see {log_path}"
                    )
                with (
                    contextlib.suppress(OSError),
                    urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r,
                ):
                    if r.status == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"server not healthy after {timeout_s} s; see {log_path}")
                time.sleep(0.3)
            yield base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def chromium_page(viewport=(1400, 950)):
    """A fresh Playwright page in headless Chromium (software WebGL)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            yield page
        finally:
            browser.close()


def log_in(page, base: str, username: str, password: str, path: str = "") -> None:
    """Open ``base/path``, fill the login form, wait for the app to rerun."""
    page.goto(f"{base}/{path}")
    page.wait_for_selector('[data-testid="stApp"]')
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for(timeout=30_000)

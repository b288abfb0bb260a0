"""Helpers for tests that run and kill real processes: line reader with a deadline, ports."""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class LineProcess:
    """A subprocess whose stdout lines are collected by a thread (reads never block a test)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None):
        env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, predicate, timeout: float) -> str:
        """The first new line matching ``predicate``; AssertionError with the output on
        timeout or exit."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                line = ""
            if line is None or time.monotonic() > deadline:
                raise AssertionError(
                    "process ended or timed out; output:\n" + "\n".join(self.seen[-30:])
                )
            if line:
                self.seen.append(line)
                if predicate(line):
                    return line

    def kill(self) -> list[str]:
        """SIGKILL, reap, and return every line it printed (including ones not yet read)."""
        self.proc.kill()
        self.proc.wait(timeout=30)
        while True:
            line = self.lines.get(timeout=30)
            if line is None:
                return self.seen
            self.seen.append(line)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

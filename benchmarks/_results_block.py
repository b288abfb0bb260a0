"""Write a benchmark's table into benchmarks/RESULTS.md between its own marker comments, so a
rerun replaces its block in place and leaves every other section untouched."""

from __future__ import annotations

import re
from pathlib import Path


def replace_block(path: Path, begin: str, end: str, lines: list[str]) -> None:
    """Put ``lines`` between ``begin`` and ``end`` in ``path`` (appended when absent)."""
    block = "\n".join([begin, *lines, end])
    text = path.read_text() if path.is_file() else ""
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + ("\n\n" if text else "") + block + "\n"
    path.write_text(text)

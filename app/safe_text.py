"""Show text that may contain user input (usernames, study names, spec text, error messages)
as plain text.

Streamlit renders the body of ``st.error`` / ``st.success`` / ``st.info`` / ``st.warning`` /
``st.caption`` / ``st.subheader`` / ``st.markdown`` as markdown: a username such as
``![x](http://host/track.png)`` echoed in an error message made the browser fetch that URL,
and ``[link](javascript:...)`` became a link. :func:`md_escape` backslash-escapes every
character that starts markdown syntax (CommonMark lets any ASCII punctuation be escaped), so
the text shows exactly as typed; the wrappers below are what pages use for such text.
"""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

# Inline syntax: emphasis, code, links/images, HTML and autolinks, tables, strike-through, math
# ($...$), Streamlit directives (:color[...]) and the escape character itself.
_INLINE = re.compile(r"([\\`*_{}\[\]()<>!|~$#])")
# Block syntax only counts at the start of a line: lists, quotes, headings, setext underlines.
_LINE_START = re.compile(r"^(\s*)([-+=>])", re.M)
_ORDERED = re.compile(r"^(\s*\d+)([.)])", re.M)


def md_escape(text: Any) -> str:
    """``str(text)`` with markdown syntax escaped, so a markdown renderer shows it verbatim.

    Bare URLs are broken up too (``http:\\/\\/``, ``www\\.``): GitHub-flavoured markdown turns them
    into links.
    """
    out = _INLINE.sub(r"\\\1", str(text))
    out = _LINE_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", out)
    out = _ORDERED.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", out)
    out = out.replace("://", r":\/\/")
    return re.sub(r"(?i)\bwww\.", lambda m: m.group(0)[:-1] + r"\.", out)


def error(text: Any, **kwargs: Any) -> None:
    st.error(md_escape(text), **kwargs)


def warning(text: Any, **kwargs: Any) -> None:
    st.warning(md_escape(text), **kwargs)


def info(text: Any, **kwargs: Any) -> None:
    st.info(md_escape(text), **kwargs)


def success(text: Any, **kwargs: Any) -> None:
    st.success(md_escape(text), **kwargs)


def caption(text: Any, **kwargs: Any) -> None:
    st.caption(md_escape(text), **kwargs)


def subheader(text: Any, **kwargs: Any) -> None:
    st.subheader(md_escape(text), anchor=False, **kwargs)


def toast(text: Any, **kwargs: Any) -> None:
    st.toast(md_escape(text), **kwargs)


__all__ = ["caption", "error", "info", "md_escape", "subheader", "success", "toast", "warning"]

"""Self-contained HTML report: settings, conventions, tables and plotly figures in one file.

The plotly.js bundle is embedded once (``include_plotlyjs="inline"`` for the first figure only),
so the file opens offline and can be archived next to the study. Tables are escaped HTML; the
report holds no script other than plotly's.
"""

from __future__ import annotations

import datetime as _dt
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from synth_backend.io import atomic_write

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1200px;color:#222}
table.data{border-collapse:collapse;font-size:0.85rem;margin-bottom:1.5rem}
table.data th,table.data td{border:1px solid #ccc;padding:2px 6px;text-align:right}
table.data th{background:#f2f2f2}
dl.settings dt{font-weight:600} dl.settings dd{margin:0 0 .4rem 1rem}
dl.settings pre{background:#f7f7f7;padding:.5rem;font-size:0.8rem;overflow-x:auto}
"""


def _settings_html(settings: Mapping[str, object]) -> str:
    items = "".join(
        f"<dt>{html.escape(str(k))}</dt><dd>{_value_html(v)}</dd>" for k, v in settings.items()
    )
    return f'<dl class="settings">{items}</dl>'


def _value_html(value: object) -> str:
    """A setting as escaped HTML; mappings/lists as YAML and any multi-line text (a study spec)
    in ``<pre>`` so its lines and indentation survive."""
    if isinstance(value, Mapping | list):
        import yaml

        value = yaml.safe_dump(
            value if isinstance(value, list) else dict(value), sort_keys=False, allow_unicode=True
        )
    text = str(value)
    if "\n" in text.strip():
        return f"<pre>{html.escape(text.rstrip())}</pre>"
    return html.escape(text)


def build_report(
    tables: Mapping[str, pd.DataFrame],
    figures: Sequence,
    settings: Mapping[str, object],
    out_path: str | Path,
    *,
    title: str = "turingct evaluation report",
    conventions: Mapping[str, Mapping[str, object]] | None = None,
    html_tables: Mapping[str, str] | None = None,
) -> Path:
    """Write one HTML file with ``settings`` (provenance), every table (name -> DataFrame,
    displayed to 4 significant digits; the CSVs keep full precision) with its own
    ``conventions[name]`` right above it, the conventions that belong to no table, and every
    plotly figure. ``html_tables[name]`` replaces the default rendering of a table (e.g. the
    Table-3 layout in percent).

    Returns the written path (written atomically).
    """
    import plotly.io as pio

    conventions = dict(conventions or {})
    html_tables = dict(html_tables or {})
    parts = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Generated {_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')}</p>",
        "<h2>Settings and provenance</h2>",
        _settings_html(settings),
    ]
    if tables:
        parts.append("<h2>Tables</h2>")
        for name, df in tables.items():
            body = html_tables.get(name) or df.to_html(
                index=False,
                classes="data",
                float_format=lambda v: f"{v:.4g}",
                na_rep="n/a",
                border=0,
                escape=True,
            )
            parts.append(f"<h3>{html.escape(name)}</h3>")
            if name in conventions:
                parts.append(_settings_html(conventions[name]))
            parts.append(body)
    rest = {k: v for k, v in conventions.items() if k not in tables}
    if rest:
        parts.append("<h2>Conventions</h2>")
        for name, conv in rest.items():
            parts += [f"<h3>{html.escape(name)}</h3>", _settings_html(conv)]
    if figures:
        parts.append("<h2>Figures</h2>")
        for i, fig in enumerate(figures):
            parts.append(
                pio.to_html(fig, full_html=False, include_plotlyjs="inline" if i == 0 else False)
            )
    doc = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>"
    )
    out = Path(out_path)
    return atomic_write(out, lambda tmp: Path(tmp).write_text(doc, encoding="utf-8"))

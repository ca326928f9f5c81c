"""The run's report folder: ``metrics.json`` and a self-contained ``report.html``.

The HTML page has inline CSS and inline SVG charts only: no script, no font, no image, no URL, so
it opens offline and can be archived with the run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from autarky.scenarios.svg import bar_chart, line_chart


@dataclass(frozen=True)
class Section:
    title: str
    body: str
    """HTML (a chart from :mod:`autarky.scenarios.svg`, a table)."""
    note: str = ""


def table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{escape(str(k))}</th><td>{escape(_fmt(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def wallet_changes(series: dict[str, Any]) -> dict[str, Sequence[Sequence[float]]]:
    """Each ``wallet/<kind>`` series as its change since its first sample."""
    changes: dict[str, Sequence[Sequence[float]]] = {}
    for name, points in series.items():
        if name.startswith("wallet/") and points:
            first = points[0][1]
            changes[name.removeprefix("wallet/")] = [[hour, value - first] for hour, value in points]
    return changes


def standard_sections(metrics: dict[str, Any], series: dict[str, Any]) -> list[Section]:
    """Prices, wallets, decisions and refusals: what every scenario's report shows."""
    sections = []
    prices = series.get("prices") or []
    if prices:
        sections.append(
            Section(
                "Clearing prices",
                line_chart(
                    {"clearing price": [[p[0], p[1]] for p in prices]}, y_label="aut per Wh", step=True
                ),
                "Uniform price of each delivery interval's auction (intervals that traded).",
            )
        )
    wallets = wallet_changes(series)
    if wallets:
        sections.append(
            Section(
                "Wallets",
                line_chart(wallets, y_label="aut since the start"),
                "What each kind of machine gained or spent since the first hourly sample: the change of "
                "its balances plus what it holds locked in escrow (open bids, ask collateral). Changes, "
                "not balances, so a grid operator's large float does not flatten everyone else's line.",
            )
        )
    decisions = metrics.get("decisions_by_policy") or {}
    sections.append(
        Section(
            "Decisions",
            bar_chart(decisions, "records"),
            f"{metrics.get('decisions_recorded', 0):,} decision records, "
            f"{metrics.get('decisions_anchored', 0):,} anchored on chain in "
            f"{metrics.get('anchor_transactions', 0):,} batches.",
        )
    )
    refusals = {f"ledger: {k}": v for k, v in (metrics.get("refusals") or {}).items()}
    refusals.update({f"pre-check: {k}": v for k, v in (metrics.get("prechecks_refused") or {}).items()})
    sections.append(
        Section(
            "Failures and refusals",
            bar_chart(refusals, "transactions"),
            "Transactions the ledger refused, and actions a machine's pre-check refused "
            f"(never submitted), by error code; handler failures: {metrics.get('handler_failures', 0)}.",
        )
    )
    return sections


STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:800px;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}th{text-align:left;padding:2px 12px 2px 0;font-weight:500}
td{padding:2px 0;font-variant-numeric:tabular-nums}.note{color:#555;font-size:.9em}
.legend{font-size:.85em;margin:4px 0 0 64px}.ok{color:#2a7}.bad{color:#c22}
"""


def render_html(title: str, summary: list[tuple[str, Any]], sections: list[Section]) -> str:
    body = [f"<h1>{escape(title)}</h1>", table(summary)]
    for section in sections:
        body.append(f"<h2>{escape(section.title)}</h2>")
        if section.note:
            body.append(f'<p class="note">{escape(section.note)}</p>')
        body.append(section.body)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def write_report(out: Path, metrics: dict[str, Any], html: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, sort_keys=True, indent=1) + "\n")
    (out / "report.html").write_text(html)

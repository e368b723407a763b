"""The console's static parts: both message catalogs hold the same keys and every key a template or page asks
for; the vendored htmx is the file its README names (by hash), with its licence beside it; the charts are SVG a
screen reader can read (title, description with the totals, a table of the figures)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from gateway.console.charts import Series, stacked_bars
from gateway.console.i18n import catalog, translator

CONSOLE = Path(__file__).resolve().parents[2] / "gateway" / "console"


def test_both_catalogs_hold_the_same_keys_and_every_key_used() -> None:
    italian, english = catalog("it"), catalog("en")
    assert set(italian) == set(english)
    prefixes = {key.split(".")[0] for key in italian}
    used: set[str] = set()
    for source in [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("*.py")]:
        for key in re.findall(r"""["']([a-z]+(?:\.[a-z_-]+)+)["']""", source.read_text(encoding="utf-8")):
            if key.split(".")[0] in prefixes and key.rsplit(".", 1)[1] not in ("html", "css", "js", "yaml"):
                used.add(key)
    assert len(used) > 100
    missing = sorted(k for k in used if k not in italian)
    assert missing == []
    assert translator("en")("home.open_items", count=3) == "Open items: 3"


def test_the_vendored_htmx_is_the_published_file_with_its_licence() -> None:
    vendor = CONSOLE / "static" / "vendor"
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    expected = re.search(r"`htmx.min.js`.*`([0-9a-f]{64})`", readme)
    assert expected is not None
    assert hashlib.sha256((vendor / "htmx.min.js").read_bytes()).hexdigest() == expected.group(1)
    assert "Zero-Clause BSD" in (vendor / "htmx.LICENSE").read_text(encoding="utf-8")


def test_charts_are_svg_with_a_title_a_description_and_the_figures() -> None:
    days = ("2026-12-01", "2026-12-02", "2026-12-03")
    series = [Series("permit", "Permitted", "fill-permit"), Series("deny-consent", "Denied", "fill-deny-consent")]
    svg = str(stacked_bars("Decisions", days, series, {"permit": {"2026-12-01": 4, "2026-12-03": 1},
                                                       "deny-consent": {"2026-12-03": 2}},
                           lambda totals: f"permitted {totals['permit']}, denied {totals['deny-consent']}"))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert "<title" in svg and "permitted 5, denied 2" in svg
    assert svg.count("<rect") == 3
    assert "<td>4</td><td>0</td>" in svg and "2026-12-02" not in svg.split("<tbody>")[1]  # days without events
    evil = str(stacked_bars("<script>", days, series, {}, lambda _: "x"))
    assert "<script>" not in evil

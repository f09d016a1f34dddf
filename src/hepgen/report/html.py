"""A self-contained ``index.html``: inline CSS, tables of metrics, figures linked by relative paths.

No scripts, fonts or style sheets are fetched, so the report folder can be copied, zipped or opened
offline as it is. Every text is HTML-escaped. Gallery thumbnails are 640 px wide (:data:`THUMBNAIL_PX`,
two per row on a wide screen, shrunk to the window on a narrow one) and open the full-size PNG when
clicked.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hepgen.files import atomic_write_text

THUMBNAIL_PX = 640

CSS = """
body { font-family: -apple-system, "Helvetica Neue", Arial, sans-serif; margin: 2em auto; max-width: 1360px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.6em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figure.small img { width: @THUMB@px; } figcaption { font-size: 0.85em; color: #444; }
.notes li { color: #8a4b00; }
""".replace("@THUMB@", str(THUMBNAIL_PX))


@dataclass
class Table:
    """A captioned table: ``header`` names the columns, each row has one cell per column."""

    caption: str
    header: Sequence[str]
    rows: Sequence[Sequence[object]]


@dataclass
class Gallery:
    """A titled group of figures, each ``(caption, path relative to the report folder)``."""

    title: str
    figures: Sequence[tuple[str, str]]
    small: bool = True


@dataclass
class Page:
    """Everything :func:`write_index_html` renders, top to bottom."""

    title: str
    meta: Sequence[str] = ()
    notes: Sequence[str] = ()
    tables: Sequence[Table] = field(default_factory=list)
    galleries: Sequence[Gallery] = field(default_factory=list)
    links: Sequence[tuple[str, str]] = ()


def format_cell(value: object) -> str:
    """Numbers with 4 significant digits, None as an en dash, everything else as text."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render_html(page: Page) -> str:
    """The page as one HTML document string."""
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>{esc(page.title)}</title><style>{CSS}</style></head><body>", f"<h1>{esc(page.title)}</h1>"]
    out += [f'<p class="meta">{esc(line)}</p>' for line in page.meta]
    if page.links:
        out.append('<p class="meta">' + " · ".join(
            f'<a href="{esc(href, quote=True)}">{esc(text)}</a>' for text, href in page.links) + "</p>")
    if page.notes:
        out.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in page.notes) + "</ul>")
    for table in page.tables:
        out.append(f"<h2>{esc(table.caption)}</h2><table><thead><tr>")
        out.append("".join(f"<th>{esc(str(h))}</th>" for h in table.header) + "</tr></thead><tbody>")
        for row in table.rows:
            out.append("<tr>" + "".join(f"<td>{esc(format_cell(c))}</td>" for c in row) + "</tr>")
        out.append("</tbody></table>")
    for gallery in page.galleries:
        cls = ' class="small"' if gallery.small else ""
        out.append(f'<h2>{esc(gallery.title)}</h2><div class="figures">')
        for caption, src in gallery.figures:
            out.append(f'<figure{cls}><a href="{esc(src, quote=True)}"><img src="{esc(src, quote=True)}" '
                       f'alt="{esc(caption, quote=True)}"></a><figcaption>{esc(caption)}</figcaption></figure>')
        out.append("</div>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_index_html(report_dir: str | Path, page: Page) -> Path:
    """Render ``page`` to ``report_dir/index.html`` atomically and return that path."""
    path = Path(report_dir) / "index.html"
    atomic_write_text(path, render_html(page))
    return path

"""The self-contained index.html: escaping, number formatting, figures by relative path, atomic write."""

import re

from hepgen.report.html import Gallery, Page, Table, format_cell, render_html, write_index_html


def test_format_cell():
    assert [format_cell(v) for v in (None, True, 7, 0.123456789, 1.5e-9, "x")] == [
        "–", "True", "7", "0.1235", "1.5e-09", "x"]


def test_render_html_escapes_every_text_and_links_figures():
    page = Page(title="a <b> & c", meta=["<meta>"], notes=['"quoted" <note>'], links=[("json", "m.json")],
                tables=[Table("T<1>", ["name", "value"], [["<x>", 0.5], ["y", None]])],
                galleries=[Gallery("G", [("cap <i>", 'plots/a "b".png')])])
    text = render_html(page)
    assert "<b>" not in text and "<meta>" not in text and "<x>" not in text and "<i>" not in text
    assert "a &lt;b&gt; &amp; c" in text and "&lt;note&gt;" in text and "<td>&lt;x&gt;</td><td>0.5</td>" in text
    assert "<td>y</td><td>–</td>" in text
    assert re.findall(r'<img src="([^"]+)"', text) == ["plots/a &quot;b&quot;.png"]
    assert '<a href="m.json">json</a>' in text
    assert "http" not in text  # nothing is fetched: the folder works offline


def test_write_index_html_writes_atomically(tmp_path):
    path = write_index_html(tmp_path / "r", Page(title="t"))
    assert path == tmp_path / "r" / "index.html" and path.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in (tmp_path / "r").iterdir()] == ["index.html"]


def test_thumbnails_are_at_least_600_px_wide_and_open_the_full_size_figure():
    from hepgen.report.html import CSS, THUMBNAIL_PX

    assert THUMBNAIL_PX >= 600
    width = re.search(r"figure\.small img \{ width: (\d+)px; \}", CSS)
    assert width and int(width.group(1)) == THUMBNAIL_PX
    body = int(re.search(r"body \{[^}]*max-width: (\d+)px", CSS).group(1))
    assert body >= 2 * THUMBNAIL_PX  # two thumbnails side by side on a wide screen
    text = render_html(Page(title="t", galleries=[Gallery("G", [("a", "plots/a.png"), ("b", "plots/b.png")])]))
    for src in ("plots/a.png", "plots/b.png"):
        assert f'<a href="{src}"><img src="{src}"' in text  # click: the PNG itself, full size
    from hepgen.report import plots

    assert 7 * plots.DPI >= THUMBNAIL_PX  # a 7-inch histogram is not blown up to the thumbnail width

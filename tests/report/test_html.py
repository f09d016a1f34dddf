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

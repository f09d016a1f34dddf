"""The one owner of a report folder: what ``--report DIR`` of every command writes, and how.

``compare``, ``compare --showers``, ``roc``, ``unfold`` and ``design`` all write the same layout::

    DIR/
      index.html      the page: what was compared, notes, tables of numbers, the figures (self-contained,
                      no scripts or fonts fetched; :mod:`hepgen.report.html`)
      metrics.json    every number of the report as strict JSON: NaN and ±inf are written as null (never
                      the ``NaN``/``Infinity`` tokens JSON lacks); its ``"files"`` lists every file of the
                      report, relative to DIR; ``"notes"`` (compare, roc, showers) say why a number is null
      plots/NAME.png  the figures (:func:`hepgen.report.plots.save_figure`), with ``NAME.pdf`` beside a
                      figure the command also draws as vector graphics
      NAME.json       further result files a command keeps under an older name (design: ``result.json``)

How it is written: ``with ReportFolder(DIR) as report:`` draws into a hidden sibling folder
``.DIR.XXXX.tmp``; :meth:`ReportFolder.finish` writes metrics.json and index.html there; leaving the
``with`` block without an error moves the folder into place. A new DIR is that one rename, so it appears
complete or not at all. An existing DIR (an earlier report, an empty folder, a link to a folder) is updated
file by file (each file renamed into place), the figures first and metrics.json and index.html last; the
files the earlier report listed in its metrics.json that the new one lacks are removed, anything else there
(a user's own files) is left alone. On any error the sibling folder
is deleted and DIR is untouched: nothing appears at DIR when anything fails. :func:`report_problem` is the
check a command makes before any work starts.

:func:`jsonable` is the one NaN/inf → null rule, :func:`dumps` and :func:`write_json` the one JSON writer
(atomic, strict) for reports and result files alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from hepgen.errors import DataError
from hepgen.files import _umask, atomic_path, atomic_write_text, writable_location
from hepgen.report.html import Gallery, Page, write_index_html

__all__ = ["ReportFolder", "dumps", "jsonable", "report_problem", "write_json"]

METRICS, INDEX, PLOTS = "metrics.json", "index.html", "plots"


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: numpy scalars and arrays become numbers and lists, tuples lists, paths
    strings, mapping keys strings, and every NaN or ±inf ``None`` (null), however deeply nested."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def dumps(obj: Any) -> str:
    """``obj`` as indented, strict JSON text (through :func:`jsonable`: no ``NaN``/``Infinity``), newline-ended."""
    return json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n"


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` to ``path`` as strict JSON (:func:`dumps`), atomically."""
    return atomic_write_text(path, dumps(obj))


def report_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be a report folder (an existing file, an unwritable place), or None when it can."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        return f"{path} exists and is not a folder"
    return writable_location(path)


class ReportFolder:
    """A report folder written in full or not at all (module docstring): stage, :meth:`finish`, rename.

    ::

        with ReportFolder(out) as report:
            plots.plot_feature_histogram(a, b, report.figure_path("hist_x.png"), ...)
            report.add_figure("hist_x.png", "x")
            report.save_figure(fig, "response.png", "response", pdf=True)
            metrics = report.finish(metrics, Page(title="..."))
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        problem = report_problem(self.path)
        if problem:
            raise DataError(f"cannot write the report to {self.path}: {problem}.")
        self._staging: Path | None = None
        self._galleries: dict[str, tuple[bool, list[tuple[str, str]]]] = {}
        self._finished = False

    # -- staging -------------------------------------------------------------------------------------------
    def __enter__(self) -> ReportFolder:
        try:
            self.path.absolute().parent.mkdir(parents=True, exist_ok=True)
            self._staging = Path(tempfile.mkdtemp(prefix=f".{self.path.absolute().name}.", suffix=".tmp",
                                                  dir=self.path.absolute().parent))
            os.chmod(self._staging, 0o777 & ~_umask())  # mkdtemp makes 0700; a report folder is an ordinary one
        except OSError as exc:
            raise self._error(exc) from None
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                if not self._finished:
                    raise RuntimeError("ReportFolder: the with-block ended without finish(metrics, page)")
                self._commit()
        finally:
            if self._staging is not None:
                shutil.rmtree(self._staging, ignore_errors=True)
                self._staging = None
        return False

    @property
    def staging(self) -> Path:
        """The folder being written (inside the ``with`` block)."""
        if self._staging is None:
            raise RuntimeError("ReportFolder is written inside a with-block")
        return self._staging

    # -- content -------------------------------------------------------------------------------------------
    @property
    def plot_dir(self) -> Path:
        """``plots/`` in the staging folder, for drawing functions that name their own files."""
        path = self.staging / PLOTS
        path.mkdir(exist_ok=True)
        return path

    def figure_path(self, name: str) -> Path:
        """Where a drawing function writes the figure ``name`` (``"hist_x.png"``): ``plots/name`` in the staging."""
        path = self.staging / PLOTS / _relative(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def add_figure(self, name: str | Path, caption: str, gallery: str = "Figures", small: bool = True) -> str:
        """Show the figure ``plots/name`` (already drawn) under ``caption`` in ``gallery`` of index.html.

        ``small``: thumbnails (the first figure of a gallery decides). Returns its path relative to DIR.
        """
        name = Path(name)
        if name.is_absolute():
            name = name.relative_to(self.staging / PLOTS)
        rel = f"{PLOTS}/{_relative(str(name))}"
        if not (self.staging / rel).is_file():
            raise RuntimeError(f"ReportFolder: figure {rel} was not drawn")
        self._galleries.setdefault(gallery, (small, []))[1].append((caption, rel))
        return rel

    def save_figure(self, fig: Any, name: str, caption: str, gallery: str = "Figures", *, small: bool = True,
                    pdf: bool = False) -> str:
        """Save the matplotlib ``fig`` as ``plots/name`` (and ``.pdf`` beside it with ``pdf``), then
        :meth:`add_figure` it. Returns its path relative to DIR."""
        from hepgen.report.plots import save_figure

        save_figure(fig, self.figure_path(name), pdf=pdf)
        return self.add_figure(name, caption, gallery, small)

    def write_json(self, name: str, obj: Any) -> str:
        """A further JSON file ``name`` at the top of the report (strict, :func:`dumps`)."""
        rel = _relative(name)
        if rel in (METRICS, INDEX) or rel.startswith(f"{PLOTS}/"):
            raise RuntimeError(f"ReportFolder: {rel} is written by finish() or is a figure")
        write_json(self.staging / rel, obj)
        return rel

    def finish(self, metrics: Mapping[str, Any], page: Page) -> dict[str, Any]:
        """Write ``metrics.json`` (``metrics`` through :func:`jsonable`, with ``"files"``: every file of the
        report) and ``index.html`` (``page``, with a link to metrics.json and the galleries of the added
        figures after its own). Returns what metrics.json holds."""
        staged = {p.relative_to(self.staging).as_posix() for p in self.staging.rglob("*") if p.is_file()}
        files = sorted(staged | {METRICS, INDEX}, key=lambda r: (r not in (METRICS, INDEX), r))
        result = jsonable({**dict(metrics), "files": files})
        try:
            atomic_write_text(self.staging / METRICS, json.dumps(result, indent=2, allow_nan=False) + "\n")
            pdfs = sorted(rel for rel in staged if rel.endswith(".pdf"))
            links = [(METRICS, METRICS), *[link for link in page.links if link[1] != METRICS and link[1] not in pdfs],
                     *[(PurePosixPath(rel).name, rel) for rel in pdfs]]
            galleries = [*page.galleries, *(Gallery(title, figs, small=small)
                                            for title, (small, figs) in self._galleries.items() if figs)]
            write_index_html(self.staging, dataclasses.replace(page, links=links, galleries=galleries))
        except OSError as exc:
            raise self._error(exc) from None
        self._finished = True
        return result

    # -- moving into place -----------------------------------------------------------------------------------
    def _commit(self) -> None:
        staging, target = self.staging, self.path
        new = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
        try:
            if not os.path.lexists(target):
                try:
                    os.rename(staging, target)  # a new DIR: one rename
                    self._staging = None
                    _fsync_dir(target.absolute().parent)
                    return
                except OSError:
                    if not target.is_dir():  # not a DIR created meanwhile by another writer
                        raise
            # an existing DIR (or a link to one): file by file, metrics.json and index.html last
            for rel in sorted(self._previous_files() - set(new)):
                with contextlib.suppress(FileNotFoundError):
                    (target / rel).unlink()
            last = [METRICS, INDEX]
            for rel in [r for r in new if r not in last] + [r for r in last if r in new]:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                _move(staging / rel, target / rel)
            _fsync_dir(target)
        except OSError as exc:
            raise self._error(exc) from None

    def _previous_files(self) -> set[str]:
        """The files an earlier report at DIR listed in its metrics.json (only plain files inside DIR)."""
        try:
            listed = json.loads((self.path / METRICS).read_text(encoding="utf-8")).get("files", [])
        except (OSError, ValueError, AttributeError):
            return set()
        out = set()
        for rel in listed if isinstance(listed, list) else []:
            if not isinstance(rel, str):
                continue
            try:
                rel = _relative(rel)
            except ValueError:
                continue
            if (self.path / rel).is_file() and not (self.path / rel).is_symlink():
                out.add(rel)
        return out

    def _error(self, exc: OSError) -> DataError:
        return DataError(f"cannot write the report to {self.path}: {exc.strerror or exc}.")


def _relative(name: str) -> str:
    """``name`` as a relative POSIX path inside the report (no absolute path, no ``..``)."""
    rel = PurePosixPath(str(name).replace(os.sep, "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError(f"a report file must be a relative path inside the report, got {name!r}")
    return rel.as_posix()


def _move(src: Path, dst: Path) -> None:
    """Rename ``src`` over ``dst``; across file systems (DIR a link to another disk) an atomic copy."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

"""Progress bars, one way for every command: tqdm on stderr, drawn only when stderr is a terminal.

``quiet`` (the CLI's ``-q``) turns a bar off, and so does :func:`progress_enabled` (False) around a block
(``hepgen data -q`` around the generators it calls). A bar that is not drawn is still a working tqdm
object (``disable=True``), so callers update it without asking.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator
from typing import Any

_ENABLED: contextvars.ContextVar[bool] = contextvars.ContextVar("hepgen_progress", default=True)


def on_terminal() -> bool:
    """Whether stderr is a terminal (a pipe, a file or a closed stream is not)."""
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except ValueError:  # closed
        return False


def show_progress(quiet: bool | None = False) -> bool:
    """Whether to draw a bar: stderr is a terminal, not ``quiet``, not inside ``progress_enabled(False)``."""
    return not quiet and _ENABLED.get() and on_terminal()


@contextlib.contextmanager
def progress_enabled(enabled: bool) -> Iterator[None]:
    """Within the block, bars are drawn only if ``enabled`` (and on a terminal, as always)."""
    token = _ENABLED.set(bool(enabled))
    try:
        yield
    finally:
        _ENABLED.reset(token)


def progress_bar(total: int | None = None, desc: str | None = None, quiet: bool | None = False, unit: str = "it",
                 **options: Any) -> Any:
    """A tqdm bar on stderr (disabled unless :func:`show_progress`); ``options`` go to tqdm (``leave``,
    ``unit_scale``, ``initial`` ...)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, disable=not show_progress(quiet),
                dynamic_ncols=True, **options)

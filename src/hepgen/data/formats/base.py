"""Random access by row range to event data: the :class:`Source` every file format implements.

A source holds ``n`` events of shape ``event_shape``; ``read_rows(start, stop)`` returns the array
``(stop - start, *event_shape)`` in ``dtype`` (float32 unless asked otherwise), checked to be finite.
File-backed sources read only the requested rows, so files larger than memory can be streamed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hepgen.data.formats.messages import check_finite as _check_finite
from hepgen.data.formats.messages import require_numeric
from hepgen.errors import DataError, HepgenError


@dataclass(frozen=True)
class Request:
    """What the caller of ``open_source`` asked for, handed to the format backends."""

    spec: str
    columns: Sequence[str] | None = None
    exclude: Sequence[str] = ()
    jagged_length: int | None = None
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))

    @property
    def selects(self) -> bool:
        """Whether columns or exclude were given (meaningless for unnamed arrays)."""
        return self.columns is not None or bool(self.exclude)


@dataclass
class Payload:
    """What ``write`` was given, normalised: named arrays, or one unnamed array (``single``)."""

    arrays: dict[str, Any]
    single: bool
    #: HDF5 attributes, {path relative to where the arrays go ("/" for that group itself): {name: value}}
    attrs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def first(self) -> Any:
        return next(iter(self.arrays.values()))


class Source(ABC):
    """``n`` events of shape ``event_shape``, read by row range.

    Attributes: ``spec`` (where the data comes from, for messages), ``columns`` (names of the last
    axis, or None), ``event_shape``, ``dtype`` (of what ``read_rows`` returns), ``has_mask``
    (True for padded jagged data: ``read_masked`` then returns a (rows, max_length) bool mask) and
    ``units`` (``{column: unit}`` where the file records them, e.g. HDF5 ``unit`` attributes; else ``{}``).
    Subclasses implement ``_read(start, stop) -> (raw rows, mask or None)``.
    """

    def __init__(
        self,
        spec: str,
        n_rows: int,
        event_shape: tuple[int, ...],
        columns: Sequence[str] | None = None,
        *,
        dtype: Any = np.float32,
        has_mask: bool = False,
    ) -> None:
        self.spec = str(spec)
        self.columns = list(columns) if columns is not None else None
        self.event_shape = tuple(int(size) for size in event_shape)
        self.dtype = np.dtype(dtype)
        self.has_mask = has_mask
        self.units: dict[str, str] = {}
        self._n_rows = int(n_rows)
        if self.columns is not None and self.event_shape[-1:] != (len(self.columns),):
            raise ValueError(f"{len(self.columns)} column names for event shape {self.event_shape}")

    def __len__(self) -> int:
        return self._n_rows

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.spec}', rows={len(self)}, event_shape={self.event_shape})"

    @abstractmethod
    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw rows [start, stop) and their mask (or None)."""

    def read_masked(
        self, start: int, stop: int, *, check_finite: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows ``start:stop`` as ``(data (m, *event_shape) in dtype, mask (m, max_length) or None)``."""
        start, stop = int(start), int(stop)
        if not 0 <= start <= stop <= len(self):
            raise IndexError(f"rows {start}:{stop} out of range for '{self.spec}' with {len(self)} rows")
        raw, mask = self._read(start, stop)
        with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported by the finite check
            data = np.asarray(raw, dtype=self.dtype)
        if not data.flags.writeable:  # e.g. a view of a read-only memory map
            data = data.copy()
        if data.shape != (stop - start, *self.event_shape):
            raise AssertionError(f"{type(self).__name__} returned {data.shape} for rows {start}:{stop}")
        if check_finite:
            partial = (start, stop) != (0, len(self))
            _check_finite(data, self.spec, self.columns, row_offset=start, raw=raw, partial=partial)
        return data, mask

    def read_rows(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop``: (stop - start, *event_shape) in ``dtype``; a NaN/inf raises DataError naming its absolute row."""
        return self.read_masked(start, stop)[0]

    def iter_chunks(self, chunk_size: int) -> Iterator[np.ndarray]:
        """Consecutive blocks of at most ``chunk_size`` rows, in file order, covering every row once."""
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        for start in range(0, len(self), chunk_size):
            yield self.read_rows(start, min(start + chunk_size, len(self)))

    def close(self) -> None:
        """Release the file handle (a later read reopens it)."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class ArraySource(Source):
    """A :class:`Source` over an in-memory array ``(n, *event_shape)``; a 1-D array is one feature per event, ``(n, 1)``.

    ``read_rows`` may return a view of ``array`` when its dtype already matches.
    """

    def __init__(
        self,
        array: np.ndarray,
        columns: Sequence[str] | None = None,
        *,
        mask: np.ndarray | None = None,
        spec: str = "<array>",
        dtype: Any = np.float32,
    ) -> None:
        array = np.asarray(array)
        require_numeric(array.dtype, spec)
        if array.ndim == 0:
            raise DataError(f"'{spec}' holds a single number (a 0-d array), not events.")
        if array.ndim == 1:
            array = array.reshape(-1, 1)
        if mask is not None:
            mask = np.asarray(mask, dtype=bool)
            if mask.ndim != 2 or len(mask) != len(array):
                raise ValueError(f"mask of shape {mask.shape} does not fit data of shape {array.shape}")
        super().__init__(spec, len(array), array.shape[1:], columns, dtype=dtype, has_mask=mask is not None)
        self.array = array
        self.mask = mask

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        mask = None if self.mask is None else self.mask[start:stop]
        return self.array[start:stop], mask


class FileSource(Source):
    """A source that opens its file lazily, once per process: safe to pickle and to use after fork.

    Subclasses implement ``_open()`` (returning a handle with ``close()``) and ``_read_file(handle,
    start, stop)``; library errors while reading become a DataError naming the file and rows.
    """

    format_name = "data"
    read_errors: tuple[type[BaseException], ...] = (OSError, ValueError, KeyError, EOFError, RuntimeError)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._handle: Any = None
        self._pid: int | None = None

    @abstractmethod
    def _open(self) -> Any:
        """A new handle on the file (per process)."""

    @abstractmethod
    def _read_file(self, handle: Any, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw rows [start, stop) read through ``handle``, and their mask (or None)."""

    def _file(self) -> Any:
        if self._handle is None or self._pid != os.getpid():
            self._handle = self._open()
            self._pid = os.getpid()
        return self._handle

    def _read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        try:
            return self._read_file(self._file(), start, stop)
        except HepgenError:
            raise
        except self.read_errors as exc:
            reason = str(exc).strip() or type(exc).__name__
            raise DataError(
                f"Cannot read rows {start}-{stop - 1} of '{self.spec}' ({self.format_name}): {reason}. "
                "The file may be truncated or corrupted."
            ) from exc

    def close(self) -> None:
        if self._handle is not None and self._pid == os.getpid():
            self._handle.close()
        self._handle = None
        self._pid = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_pid"] = None
        return state

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 — never raise from a finaliser
            pass


def stack_columns(parts: Sequence[np.ndarray]) -> np.ndarray:
    """``k`` arrays (m,) -> (m, k) in their common dtype."""
    return np.stack([np.asarray(part) for part in parts], axis=1)


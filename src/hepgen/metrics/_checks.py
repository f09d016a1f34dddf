"""Input checks shared by the metrics: arrays become float64 NumPy arrays or a DataError is raised."""

from __future__ import annotations

import numpy as np

from hepgen.errors import DataError


def as_samples(x: object, name: str, *, ndim: int | None = None) -> np.ndarray:
    """Return ``x`` as a finite float64 array of shape ``(n,)`` or ``(n, d)``.

    ``ndim=2`` promotes a 1-D array to ``(n, 1)``; ``ndim=1`` demands a 1-D array.
    Raises DataError for empty, non-numeric or non-finite input, naming the first bad row (and column).
    """
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: cannot be read as a numeric array ({exc}).") from None
    if ndim == 2 and arr.ndim == 1:
        arr = arr[:, None]
    if ndim is not None and arr.ndim != ndim:
        raise DataError(f"{name}: expected a {ndim}-D array, got shape {arr.shape}.")
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise DataError(f"{name}: the array is empty (shape {arr.shape}); at least one row is needed.")
    bad = ~np.isfinite(arr).reshape(arr.shape[0], -1)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        where = f" (column {column})" if arr.ndim == 2 else ""
        raise DataError(f"{name}: contains NaN or inf; the first bad row is {row}{where}.")
    return arr


def as_weights(w: object, n: int, name: str, *, allow_negative: bool = True) -> np.ndarray | None:
    """Return per-event weights as a finite float64 array of shape ``(n,)``, or None if ``w`` is None.

    With ``allow_negative=False`` a negative weight raises a DataError naming the first such row.
    """
    if w is None:
        return None
    arr = np.asarray(w, dtype=np.float64).reshape(-1) if np.ndim(w) else None
    if arr is None or arr.shape[0] != n:
        shape = np.shape(w)
        raise DataError(f"{name}: expected one weight per event, shape ({n},), got shape {shape}.")
    finite = np.isfinite(arr)
    if not finite.all():
        raise DataError(f"{name}: contains NaN or inf; the first bad row is {int(np.flatnonzero(~finite)[0])}.")
    if not allow_negative and (arr < 0).any():
        row = int(np.flatnonzero(arr < 0)[0])
        raise DataError(
            f"{name}: negative weight {arr[row]:g} at row {row}; this metric is only defined for "
            "non-negative weights (e.g. NLO samples with negative weights cannot be used here)."
        )
    if not (arr != 0).any():
        raise DataError(f"{name}: all weights are zero; the weighted sample is empty.")
    return arr

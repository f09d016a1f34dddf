"""What every data generator shares (toys, calo, phi4, smear, jets): option checking against an ``OPTIONS``
table and a seed-stable parallel map over worker processes (its bar from :mod:`hepgen.progress`, the one owner).
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from hepgen.errors import ConfigError
from hepgen.options import Option
from hepgen.options import check_options as _check_options
from hepgen.progress import progress_bar

OptionSpec = Mapping[str, Option]  # (older: (type, default, help) tuples)


def check_options(options: Mapping[str, Any], spec: OptionSpec, generator: str) -> dict[str, Any]:
    """Return ``options`` completed with the defaults of ``spec`` and converted to its types.

    ``spec`` maps option name -> :class:`hepgen.options.Option` (type, default, bounds, help). Raises
    ConfigError naming an unknown option (and the nearest valid one), or an option whose value does not
    fit: strings such as ``"3"``, ``"0.5"``, ``"true"``, ``"none"`` from the CLI's ``--option key=value``
    are converted by the one grammar of :mod:`hepgen.options` (``"maybe"`` is no boolean, ``"2.5"`` no
    integer). The older ``(type, default, help)`` tuples of a spec are read as that Option.
    """
    schema = {key: Option(entry[1], kind=entry[0], help=entry[2]) if isinstance(entry, tuple) else entry
              for key, entry in spec.items()}
    return _check_options(options, schema, owner=f"data generator {generator!r}")


def check_choice(value: Any, choices: Sequence[Any], key: str, generator: str) -> None:
    """Raise ConfigError unless ``value`` is one of ``choices`` (the message lists them)."""
    if value not in choices:
        raise ConfigError(
            f"option {key!r} of data generator {generator!r} must be one of "
            f"{', '.join(map(str, choices))}; got {value!r}"
        )


def check_range(value: float, key: str, generator: str, low: float | None = None,
                high: float | None = None, *, low_open: bool = False) -> None:
    """Raise ConfigError unless ``low <= value <= high`` (``low < value`` if ``low_open``)."""
    bad = (value is None or not np.isfinite(value)
           or (low is not None and (value <= low if low_open else value < low))
           or (high is not None and value > high))
    if bad:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        bracket = "(" if low_open else "["
        raise ConfigError(
            f"option {key!r} of data generator {generator!r} must lie in {bracket}{lo}, {hi}]; "
            f"got {value!r}"
        )


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def resolve_workers(workers: int | None) -> int | None:
    """The ``workers`` option: None (this process), a positive count, or -1 for one per usable core
    (scikit-learn's ``n_jobs=-1``). Raises ConfigError otherwise."""
    if workers is None:
        return None
    if workers == -1:
        return usable_cores()
    if workers < 1:
        raise ConfigError(f"option 'workers' must be a positive integer, -1 (every core) or none; got {workers!r}")
    return int(workers)


def parallel_map(function: Callable[..., Any], tasks: Sequence[tuple], workers: int | None,
                 desc: str) -> list[Any]:
    """``[function(*task) for task in tasks]`` in task order, on ``workers`` processes.

    ``workers=None`` or ``1`` runs in this process, ``-1`` on every usable core. Tasks must carry their
    own random streams (e.g. from ``np.random.SeedSequence(seed).spawn``) so that results do not depend
    on ``workers``. A tqdm bar counts finished tasks when stderr is a terminal.
    """
    workers = resolve_workers(workers)
    bar = progress_bar(len(tasks), desc, quiet=len(tasks) < 2)
    results: list[Any] = [None] * len(tasks)
    if workers is None or workers == 1 or len(tasks) < 2:
        for i, task in enumerate(tasks):
            results[i] = function(*task)
            bar.update()
    else:
        # fork on Linux: a spawned worker would first import hepgen (and torch), seconds per worker; the
        # workers only run NumPy, which is fork-safe. spawn elsewhere (macOS, Windows).
        context = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with concurrent.futures.ProcessPoolExecutor(min(workers, len(tasks)), mp_context=context) as pool:
            futures = {pool.submit(function, *task): i for i, task in enumerate(tasks)}
            for future in concurrent.futures.as_completed(futures):
                results[futures[future]] = future.result()
                bar.update()
    bar.close()
    return results


def split_counts(n: int, parts: int) -> list[int]:
    """Split ``n`` items into ``parts`` near-equal counts (first ones larger), e.g. 10, 4 -> 3,3,2,2."""
    return [n // parts + (i < n % parts) for i in range(parts)]

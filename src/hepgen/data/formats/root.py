"""ROOT files (uproot): ``file.root[:dir/tree]``, TTree or RNTuple, read by entry range.

Branch-level keys select branches like ``columns`` does: ``file.root:tree/pt`` or
``file.root:dir/tree/pt,eta`` (explicit ``columns`` take their place).

Layouts read (``columns`` selects branches; default: all of them):
  * flat numeric branches only -> data (n, n_branches), columns = branch names; fixed-size array
    branches (``float x[k]``) are flattened into columns ``x[0]``, ``x[1]``, ... — unless a single
    such branch is selected, which keeps its shape (n, *inner_shape) with columns None;
  * jagged numeric branches only (``double jet_pt[nJet]``) -> padded/truncated to
    ``jagged_length`` entries: data (n, jagged_length, n_branches), columns = branch names (last
    axis), mask (n, jagged_length) True on real entries; padding is 0. All selected jagged
    branches must have the same number of entries in every event (the same counter);
  * flat and jagged branches together -> with ``jagged_length`` N, one flat table: the flat
    branches' columns, then ``name[0]`` ... ``name[N-1]`` for each jagged branch (padding 0, no
    mask; each jagged branch padded on its own); without it, a DataError asking for N.
With no selection, counter branches of jagged branches (``nJet``) are left out.
Writing: one TTree (``events`` or the key), one branch per array; (n, k, ...) arrays become
fixed-size array branches, awkward arrays jagged branches; written in baskets of ~4 MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from hepgen.data.formats.base import FileSource, Payload, Request
from hepgen.data.formats.messages import (
    quoted_list,
    select_names,
    unknown_name,
    unreadable,
)
from hepgen.errors import DataError

TREE_CLASSES = ("TTree", "TNtuple", "TNtupleD", "ROOT::RNTuple")
_NUMERIC = ("bool", "int", "uint", "float")
_BASKET_VALUES = 1 << 20


def _open(path: Path) -> Any:
    try:
        return uproot.open(path, array_cache=None)
    except Exception as exc:  # uproot raises many types for a damaged or foreign file
        raise unreadable(path, "ROOT", exc) from exc


def _trees(handle: Any) -> list[str]:
    names: list[str] = []
    for name, classname in handle.classnames(recursive=True).items():
        name = name.rsplit(";", 1)[0]
        if classname in TREE_CLASSES and name not in names:
            names.append(name)
    return names


def keys(path: Path, key: str | None) -> list[str]:
    """The trees of the file (with their directories), or the branches of tree ``key``."""
    handle = _open(path)
    try:
        if key is None:
            return _trees(handle)
        _, tree, branches = _tree(handle, key, path)
        return list(branches) if branches else list(tree.keys())
    except DataError:
        raise
    except Exception as exc:  # uproot decoding errors of a truncated file (OSError, ValueError ...)
        raise unreadable(path, "ROOT", exc) from exc
    finally:
        handle.close()


def _branch_key(key: str, trees: list[str]) -> tuple[str, list[str] | None]:
    """``tree/a,b`` -> (``tree``, [``a``, ``b``]) when ``tree`` is a tree of the file; else (key, None)."""
    if key.rsplit(";", 1)[0] in trees:
        return key, None
    head, _, tail = key.rpartition("/")
    if head.rsplit(";", 1)[0] in trees and tail:
        return head, [name.strip() for name in tail.split(",") if name.strip()]
    return key, None


def _tree(handle: Any, key: str | None, path: Path) -> tuple[str, Any, list[str] | None]:
    """(name, tree, branches named in the key or None): the tree ``key`` (``tree`` or
    ``tree/branch[,branch]``), or the only tree of the file when ``key`` is None."""
    trees = _trees(handle)
    branches = None
    if key is not None:
        key, branches = _branch_key(key, trees)
    if key is None:
        if len(trees) == 1:
            key = trees[0]
        elif not trees:
            raise DataError(f"'{path}' holds no TTree or RNTuple (its keys: {quoted_list(handle.keys())}).")
        else:
            raise DataError(f"'{path}' holds several trees ({quoted_list(trees)}); name one as '{path}:{trees[0]}'.")
    try:
        obj = handle[key]
    except Exception:  # uproot.KeyInFileError and friends
        raise unknown_name("tree", key, trees, str(path)) from None
    if key.rsplit(";", 1)[0] not in trees:  # (hasattr() would read the object: OSError on a truncated file)
        raise DataError(f"'{path}:{key}' is a {type(obj).__name__}, not a TTree/RNTuple; trees: {quoted_list(trees)}.")
    return key, obj, branches


def _classify(array: ak.Array) -> tuple[str, tuple[int, ...]]:
    """('flat', ()) | ('fixed', inner_shape) | ('jagged', ()) | ('other', ()) from an awkward type."""
    kind = ak.type(array).content
    inner: list[int] = []
    while isinstance(kind, ak.types.RegularType):
        inner.append(kind.size)
        kind = kind.content
    jagged = False
    if not inner and isinstance(kind, ak.types.ListType) and kind.parameter("__array__") is None:
        jagged, kind = True, kind.content
    if isinstance(kind, ak.types.NumpyType) and kind.primitive.startswith(_NUMERIC) and not kind.parameters:
        return ("jagged", ()) if jagged else ("fixed", tuple(inner)) if inner else ("flat", ())
    return "other", ()


class ROOTSource(FileSource):
    """Entries of the selected branches of one tree (``layout`` 'flat', 'single' or 'jagged')."""

    format_name = "ROOT"
    read_errors = (Exception,)  # uproot's decoding errors have no common base

    def __init__(self, path: Path, key: str | None, branches: list[str], layout: str, **kwargs: Any):
        self.path, self.key, self.branches, self.layout = path, key, branches, layout
        self.jagged_length = kwargs.pop("jagged_length")
        self.jagged = set(kwargs.pop("jagged", ()))
        super().__init__(**kwargs)

    def _open(self) -> Any:
        handle = _open(self.path)
        return _Tree(handle, _tree(handle, self.key, self.path)[1])

    def _pad(self, array: ak.Array) -> np.ndarray:
        """(m, jagged_length): the first jagged_length entries of each event, padded with 0."""
        return ak.to_numpy(ak.fill_none(ak.pad_none(array, self.jagged_length, axis=1, clip=True), 0))

    def _read_file(self, handle: Any, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        if self.layout == "mixed":
            parts = []
            for name in self.branches:
                if name in self.jagged:
                    parts.append(self._pad(handle.tree[name].array(entry_start=start, entry_stop=stop, library="ak")))
                else:
                    array = handle.tree[name].array(entry_start=start, entry_stop=stop, library="np")
                    parts.append(np.asarray(array).reshape(stop - start, -1))
            return np.concatenate(parts, axis=1), None
        library = "ak" if self.layout == "jagged" else "np"
        arrays = [handle.tree[name].array(entry_start=start, entry_stop=stop, library=library) for name in self.branches]
        if self.layout == "single":
            return np.asarray(arrays[0]), None
        if self.layout == "flat":
            return np.concatenate([np.asarray(a).reshape(stop - start, -1) for a in arrays], axis=1), None
        counts = np.asarray(ak.num(arrays[0], axis=1))
        for name, array in zip(self.branches[1:], arrays[1:]):
            other = np.asarray(ak.num(array, axis=1))
            if not np.array_equal(counts, other):
                row = start + int(np.argmax(counts != other))
                raise DataError(
                    f"In '{self.spec}', the jagged branches '{self.branches[0]}' and '{name}' have different "
                    f"numbers of entries at row {row} ({counts[row - start]} vs {other[row - start]}); "
                    "select branches that share one counter, or read them separately."
                )
        length = self.jagged_length
        padded = [self._pad(a) for a in arrays]
        mask = np.arange(length)[None, :] < counts[:, None]
        return np.stack(padded, axis=-1), mask


class _Tree:
    """An open uproot file and one of its trees; ``close`` closes the file."""

    def __init__(self, handle: Any, tree: Any) -> None:
        self.handle, self.tree = handle, tree

    def close(self) -> None:
        self.handle.close()


def open_source(path: Path, key: str | None, request: Request) -> ROOTSource:
    handle = _open(path)
    try:
        return _open_source(handle, path, key, request)
    except DataError:
        raise
    except Exception as exc:  # uproot's errors on a truncated or damaged file (OSError, ValueError ...)
        raise unreadable(path, "ROOT", exc) from exc
    finally:
        handle.close()


def _open_source(handle: Any, path: Path, key: str | None, request: Request) -> ROOTSource:
    _, tree, key_branches = _tree(handle, key, path)  # the source reopens it from the key as given
    where = request.spec
    n_rows = int(tree.num_entries)
    available = list(tree.keys())
    if n_rows == 0:
        raise DataError(f"The tree of '{where}' has 0 entries: there are no events to read.")
    columns = request.columns if request.columns is not None else key_branches
    names = select_names(available, columns, request.exclude, where, "branch")
    kinds = {}
    for name in names:
        try:
            kinds[name] = _classify(tree[name].array(entry_stop=1, library="ak"))
        except Exception as exc:  # an unreadable streamer: report it like a non-numeric branch
            raise DataError(f"Branch '{name}' of '{where}' cannot be read as numbers ({exc}); exclude it.") from exc
    if columns is None and any(kind == "jagged" for kind, _ in kinds.values()):
        counters = {getattr(getattr(tree[n], "count_branch", None), "name", None) for n in names}
        names = [name for name in names if name not in counters]
    other = [name for name in names if kinds[name][0] == "other"]
    if other:
        raise DataError(
            f"Branch(es) {quoted_list(other)} of '{where}' are not numeric scalars, fixed-size arrays "
            "or jagged arrays of numbers; exclude them (exclude=...) or select numeric branches."
        )
    jagged = [name for name in names if kinds[name][0] == "jagged"]
    common = {"spec": request.spec, "n_rows": n_rows, "dtype": request.dtype, "jagged_length": request.jagged_length}
    if jagged:
        flat = [name for name in names if name not in jagged]
        if flat and request.jagged_length is None:
            raise DataError(
                f"'{where}': the selection mixes jagged branches ({quoted_list(jagged)}) with flat ones "
                f"({quoted_list(flat)}); give jagged_length=N (--jagged-length N) to read each jagged "
                f"branch as N columns ({jagged[0]}[0] ... {jagged[0]}[N-1], padded with 0), or select "
                "only flat branches (columns=[...] / --columns, exclude=[...] / --exclude)."
            )
        if flat:
            columns_out: list[str] = []
            for name in names:
                if name in jagged:
                    columns_out += [f"{name}[{i}]" for i in range(request.jagged_length)]
                else:
                    inner = kinds[name][1]
                    columns_out += [name] if not inner else [f"{name}[{','.join(map(str, i))}]"
                                                             for i in np.ndindex(*inner)]
            return ROOTSource(path, key, names, "mixed", event_shape=(len(columns_out),), columns=columns_out,
                              jagged=jagged, **common)
        if request.jagged_length is None:
            raise DataError(
                f"'{where}': branch(es) {quoted_list(jagged)} are jagged (a variable number of entries "
                "per event); pass jagged_length=N to pad/truncate every event to N entries."
            )
        return ROOTSource(
            path, key, names, "jagged", event_shape=(request.jagged_length, len(names)),
            columns=names, has_mask=True, **common,
        )
    if len(names) == 1 and kinds[names[0]][0] == "fixed":
        return ROOTSource(path, key, names, "single", event_shape=kinds[names[0]][1], **common)
    columns: list[str] = []
    for name in names:
        inner = kinds[name][1]
        columns += [name] if not inner else [f"{name}[{','.join(map(str, i))}]" for i in np.ndindex(*inner)]
    return ROOTSource(path, key, names, "flat", event_shape=(len(columns),), columns=columns, **common)


def write(tmp: Path, payload: Payload, key: str | None) -> None:
    """Write one TTree ``key`` (default ``events``) with one branch per array, in baskets of ~4 MB."""
    arrays: dict[str, Any] = {}
    for name, array in payload.arrays.items():
        arrays["data" if payload.single else name] = array if isinstance(array, ak.Array) else np.ascontiguousarray(array)
    lengths = {name: len(array) for name, array in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"A ROOT tree needs arrays of one length (one entry per event); got lengths {lengths}.")
    n_rows = next(iter(lengths.values()))
    types = {
        name: array.type if isinstance(array, ak.Array) else np.dtype((array.dtype, array.shape[1:]))
        for name, array in arrays.items()
    }
    per_row = max(1, sum(int(np.prod(a.shape[1:])) if isinstance(a, np.ndarray) else 8 for a in arrays.values()))
    step = max(1, _BASKET_VALUES // per_row)
    with uproot.recreate(tmp) as handle:
        try:
            tree = handle.mktree(key or "events", types)
            for start in range(0, n_rows, step):
                tree.extend({name: array[start : start + step] for name, array in arrays.items()})
        except (TypeError, ValueError) as exc:  # e.g. a dtype ROOT has no type for (float16)
            raise DataError(f"Cannot write these arrays as a ROOT TTree: {exc}.") from exc

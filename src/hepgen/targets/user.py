"""The user's own integrand: a Python function f(x) on [0, 1]^d, imported only from a path the user gives.

    hepgen fit hypercube-flow --integrand my_f.py:NAME --dims D ...      (the CLI)
    HypercubeFlow(target=f, dims=D) / HypercubeFlow(integrand="my_f.py:NAME", dims=D)   (Python)

``NAME`` takes x (batch, d) and returns (batch,) values f(x) >= 0. x arrives as a float64 CPU torch tensor
(NumPy functions accept it); when the function raises a TypeError or AttributeError on a tensor (NumPy-only
code such as ``x.prod(axis=1)``), it is called with a NumPy array from then on. The result may be a tensor, an
array or a list. A value that is NaN, infinite or negative, a result of the wrong shape, or an exception in the
function is a :class:`~hepgen.errors.DataError` naming the file, the function and the row of the batch.

Code is imported only by :func:`load_function`, from the file path given on the command line or in Python
(``importlib.util.spec_from_file_location``), never by a name found in a file: a run directory records the
path and :func:`file_sha256` of the file (:mod:`hepgen.train.rundir`) and never imports it on its own.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from hepgen.errors import ConfigError, DataError
from hepgen.files import file_sha256
from hepgen.options import excerpt
from hepgen.targets.base import Target, check_number


def split_spec(spec: str, flag: str = "--integrand") -> tuple[Path, str]:
    """``path.py:NAME`` -> (path, NAME); a ConfigError naming ``flag`` when the form or the file is wrong."""
    path, sep, name = str(spec).rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise ConfigError(f"{flag} {excerpt(spec)}: expected FILE.py:NAME (a Python file and the function in it)")
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{flag} {excerpt(spec)}: the file {path} does not exist")
    return file, name


def load_function(spec: str, flag: str = "--integrand") -> tuple[Callable[..., Any], dict[str, str]]:
    """Import ``NAME`` from the file of ``spec`` (``path.py:NAME``): (the callable, its record
    ``{"path": absolute path, "name": NAME, "sha256": ...}``). Errors name the flag and the file."""
    file, name = split_spec(spec, flag)
    sha = file_sha256(file)
    module_name = f"hepgen_user_{sha[:16]}"
    loader = importlib.util.spec_from_file_location(module_name, file)
    if loader is None or loader.loader is None:
        raise ConfigError(f"{flag} {excerpt(spec)}: {file} is not a Python file that can be imported")
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module  # dataclasses and pickling look the module up by name
    try:
        loader.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure of the user's file is reported, not a traceback
        sys.modules.pop(module_name, None)
        raise ConfigError(f"{flag} {excerpt(spec)}: importing {file} failed: {type(exc).__name__}: "
                          f"{excerpt(str(exc), 120)}") from None
    function = getattr(module, name, None)
    if function is None:
        defined = [k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                   and getattr(v, "__module__", None) == module_name]
        raise ConfigError(f"{flag} {excerpt(spec)}: {file} does not define {name!r}; it defines "
                          f"{', '.join(defined) or 'no functions'}")
    if not callable(function):
        raise ConfigError(f"{flag} {excerpt(spec)}: {name!r} in {file} is a {type(function).__name__}, not a function")
    return function, {"path": str(file.resolve()), "name": name, "sha256": sha}


def describe(function: Callable[..., Any], source: dict[str, str] | None) -> str:
    """How messages name the user's function: ``file.py:NAME`` or its Python name."""
    if source:
        return f"{source['path']}:{source['name']}"
    return getattr(function, "__qualname__", None) or type(function).__name__


def check_values(values: Any, batch: int, what: str, shape: tuple[int, ...], x: Tensor | None = None,
                 nonnegative: bool = True) -> Tensor:
    """The user function's result as a float64 tensor (batch,), or a DataError naming ``what`` (the file and
    function) and the first bad row (with an excerpt of its input ``x``): a wrong shape, NaN/inf or (when
    ``nonnegative``: an integrand, not an action) a negative value."""
    try:
        v = torch.as_tensor(np.asarray(values.detach().cpu() if isinstance(values, Tensor) else values,
                                       dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{what} returned {type(values).__name__}, not numbers: {excerpt(str(exc), 80)}") from None
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if tuple(v.shape) != (batch,):
        raise DataError(f"{what} returned shape {tuple(v.shape)} for input of shape {shape}; it must return one value "
                        f"per row, shape ({batch},)")
    bad = ~torch.isfinite(v) | (v < 0) if nonnegative else ~torch.isfinite(v)
    if bool(bad.any()):
        row = int(torch.nonzero(bad)[0])
        kind = "negative" if bool(torch.isfinite(v[row])) else "not finite"
        point = "" if x is None else f" (input {excerpt([round(float(t), 6) for t in x[row].detach().flatten()], 80)})"
        raise DataError(f"{what} returned {float(v[row])!r} ({kind}) at row {row} of a batch of {batch}{point}; "
                        f"values must be finite{' and >= 0' if nonnegative else ''}")
    return v


def check_action(s: Any, x: Tensor, what: str, column: bool = True) -> Tensor:
    """A lattice action's result S(φ) for the fields ``x`` (batch, *shape), checked: a torch tensor of shape
    (batch,) (or (batch, 1) when ``column``, returned as (batch,)), finite, and carrying φ's gradient when ``x``
    has one. Otherwise a DataError naming ``what`` (the file and function, or the target) and the first bad row."""
    if not isinstance(s, Tensor):
        raise DataError(f"{what} returned {type(s).__name__}, not a torch tensor: the action must be "
                        "differentiable torch code (a flow is trained through its gradient)")
    if column and s.dim() == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if tuple(s.shape) != (len(x),):  # check_values would take a column (batch, 1) too
        raise DataError(f"{what} returned shape {tuple(s.shape)} for input of shape {tuple(x.shape)}; it must return "
                        f"one value per row, shape ({len(x)},)")
    check_values(s, len(x), what, tuple(x.shape), x, nonnegative=False)
    if x.requires_grad and not s.requires_grad:
        raise DataError(f"{what} returned a tensor without the field's gradient (detached, or computed "
                        "through NumPy): the action must be differentiable torch code")
    return s


class UserFunction:
    """Calls the user's function on a batch (torch first, NumPy when it refuses a tensor) and checks its values."""

    def __init__(self, function: Callable[..., Any], source: dict[str, str] | None = None, what: str = "integrand"):
        if not callable(function):
            raise ConfigError(f"the {what} must be callable, got {type(function).__name__}")
        self.function, self.source, self.what = function, source, what
        self.numpy = False

    @property
    def label(self) -> str:
        return f"{self.what} {describe(self.function, self.source)}"

    def __call__(self, x: Tensor) -> Tensor:
        """f(x): x (batch, ...) float64 -> (batch,) float64 on x's device."""
        arg = x.detach().cpu().double()
        try:
            if self.numpy:
                out = self.function(arg.numpy())
            else:
                try:
                    out = self.function(arg)
                except (TypeError, AttributeError):
                    out = self.function(arg.numpy())
                    self.numpy = True
        except Exception as exc:  # noqa: BLE001 - the user's code failing is a user error, named
            raise DataError(f"{self.label} raised {type(exc).__name__} on a batch of shape {tuple(x.shape)}: "
                            f"{excerpt(str(exc), 120)}") from None
        return check_values(out, len(x), self.label, tuple(x.shape), arg).to(x.device)


class UserIntegrand(Target):
    """f(x) on [0, 1]^dims from the user's function (module doc); ``log_prob`` = log f, −inf outside the cube.

    Args:
        function: x (batch, dims) -> (batch,) values >= 0 (torch or NumPy).
        dims: the dimension d.
        source: where it came from, ``{"path", "name", "sha256"}`` (:func:`load_function`), or None.
    """

    name = "user"
    domain = "unit-hypercube"

    def __init__(self, function: Callable[..., Any], dims: int, source: dict[str, str] | None = None):
        self.dims = check_number(dims, "dims", "user", 1, integer=True)
        self.event_shape = (self.dims,)
        self.call = UserFunction(function, source, "integrand")
        self.source = source

    def log_prob(self, x: Tensor) -> Tensor:
        x = self.check(x)
        inside = ((x >= 0.0) & (x <= 1.0)).all(-1)
        f = self.call(x)
        return torch.where(inside, torch.log(f), -torch.inf).to(x.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"dims": self.dims, "function": describe(self.call.function, self.source)}


class UserAction(Target):
    """exp(−S[φ]) of the user's lattice action S (a periodic lattice of 1, 2 or 3 dimensions):
    ``log_prob`` = −S.

    Args:
        function: S, φ (batch, *shape) -> (batch,), differentiable torch (a flow is trained through its gradient).
        shape: the lattice, e.g. (16, 16); 1 to 3 axes of >= 2 sites.
        source: where it came from, ``{"path", "name", "sha256"}`` (:func:`load_function`), or None.

    S is called with φ in the caller's dtype (float32 while training; float64 for the Metropolis weights)
    and must return a tensor of shape (batch,) (or (batch, 1)), finite, that carries φ's gradient. A result
    of another shape, a NaN or infinity (the row and an excerpt of its field named), a NumPy array or a
    tensor without φ's gradient, or an exception in S, is a DataError naming the file and the function.
    """

    name = "user-action"
    domain = "real"

    def __init__(self, function: Callable[..., Any], shape: Any, source: dict[str, str] | None = None):
        if not callable(function):
            raise ConfigError(f"the action must be callable, got {type(function).__name__}")
        dims = tuple(shape) if isinstance(shape, (list, tuple)) else (shape,)
        if not 1 <= len(dims) <= 3:
            raise ConfigError(f"option 'shape' of the user's action: a periodic lattice of 1, 2 or 3 axes, got "
                              f"{excerpt(list(dims))}")
        self.shape = tuple(check_number(n, "shape", "user-action", 2, integer=True) for n in dims)
        self.event_shape = self.shape
        self.function, self.source = function, source
        self.label = f"action {describe(function, source)}"

    def action(self, x: Tensor) -> Tensor:
        """S[φ]: (batch, *shape) -> (batch,) in φ's dtype, checked (class doc)."""
        x = self.check(x)
        try:
            s = self.function(x)
        except Exception as exc:  # noqa: BLE001 - the user's code failing is a user error, named
            raise DataError(f"{self.label} raised {type(exc).__name__} on a field of shape {tuple(x.shape)}: "
                            f"{excerpt(str(exc), 120)}") from None
        return check_action(s, x, self.label).to(x.dtype)

    def log_prob(self, x: Tensor) -> Tensor:
        return -self.action(x)

    def get_config(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "action": describe(self.function, self.source)}


__all__ = ["UserAction", "UserFunction", "UserIntegrand", "check_action", "check_values", "describe", "file_sha256", "load_function", "split_spec"]

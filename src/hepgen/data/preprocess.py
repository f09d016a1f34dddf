"""Invertible per-feature preprocessing, saved with the model and undone on samples.

Each feature gets one elementwise bijection u = T(x), fitted on the training data:

    standard   u = (x - mean) / std
    minmax     u = (x - min) / (max - min)                           (maps the training range to [0, 1])
    log        u = (log(x + eps) - mean) / std                        (positive energies, momenta)
    logit      u = (logit(s) - mean) / std,  s = eps + (1 - 2 eps) (x - min) / (max - min)   (bounded features)
    none       u = x

Models work on u; ``log_abs_det_jacobian(x)`` = Σ_features log|dT/dx| lets a density model report
log p(x) in the original units: log p_x(x) = log p_u(T(x)) + log|det ∂T/∂x|.

The fitted statistics are buffers, so they live in the model's ``state_dict`` and load with
``torch.load(weights_only=True)``. Image data (events of shape (C, H, W) or (H, W)) use one kind for
all pixels and scalar statistics.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from hepgen.errors import ConfigError, DataError

KINDS = ("standard", "minmax", "log", "logit", "none")

PreprocessSpec = str | Sequence[str] | dict[str, str] | None


def resolve_kinds(spec: PreprocessSpec, features: int, columns: Sequence[str] | None = None) -> list[str]:
    """Expand a preprocessing spec to one kind per feature.

    ``spec`` is a kind for every feature, a list with one kind per feature, or a dict
    ``{column_name_or_index: kind}`` (features not named get ``"standard"``; key ``"*"`` sets the default).
    """
    if spec is None:
        spec = "none"
    if isinstance(spec, str):
        kinds = [spec] * features
    elif isinstance(spec, dict):
        default = spec.get("*", "standard")
        kinds = [default] * features
        names = list(columns) if columns is not None else []
        for key, kind in spec.items():
            if key == "*":
                continue
            if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                index = int(key)
            elif key in names:
                index = names.index(key)
            else:
                raise ConfigError(
                    f"preprocess names feature {key!r}, which is not a column of the data "
                    f"(columns: {', '.join(names) if names else 'unnamed; use feature indices'})"
                )
            if not 0 <= index < features:
                raise ConfigError(f"preprocess feature index {index} out of range for {features} features")
            kinds[index] = kind
    else:
        kinds = list(spec)
        if len(kinds) != features:
            raise ConfigError(f"preprocess lists {len(kinds)} kinds for {features} features")
    for kind in kinds:
        if kind not in KINDS:
            raise ConfigError(f"unknown preprocessing {kind!r}; choose one of {', '.join(KINDS)}")
    return kinds


class Preprocessor(nn.Module):
    """Elementwise invertible map u = T(x) with one kind per feature.

    Args:
        event_shape: shape of one event, e.g. ``(features,)`` or ``(C, H, W)``.
        kinds: one kind per feature for tabular events; a single kind for images.
        eps: the offset of ``log`` and the squeeze of ``logit`` (keeps the ends finite).
    """

    def __init__(self, event_shape: Sequence[int], kinds: Sequence[str] | str = "none", eps: float = 1e-6):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        self.tabular = len(self.event_shape) == 1
        n = self.event_shape[0] if self.tabular else 1
        kinds = [kinds] * n if isinstance(kinds, str) else list(kinds)
        if len(kinds) != n:
            raise ConfigError(f"{len(kinds)} preprocessing kinds for {n} features")
        self.kinds = kinds
        self.eps = eps
        codes = torch.tensor([KINDS.index(k) for k in kinds], dtype=torch.long)
        self.register_buffer("codes", codes)
        for name, value in (("shift", 0.0), ("scale", 1.0), ("lo", 0.0), ("hi", 1.0)):
            self.register_buffer(name, torch.full((n,), value, dtype=torch.float64))
        self.register_buffer("fitted", torch.tensor(False))
        self.register_load_state_dict_post_hook(lambda module, _: module._refresh_kinds())

    def _refresh_kinds(self) -> None:
        """Keep the Python-side list of kinds in step with the ``codes`` buffer (after loading)."""
        self.kinds = [KINDS[int(i)] for i in self.codes.cpu().tolist()]

    def set_kinds(self, kinds: Sequence[str]) -> None:
        """Change the per-feature kinds before fitting (used when kinds are given by column name)."""
        if len(kinds) != self.codes.numel():
            raise ConfigError(f"{len(kinds)} preprocessing kinds for {self.codes.numel()} features")
        self.kinds = list(kinds)
        self.codes.copy_(torch.tensor([KINDS.index(k) for k in kinds], dtype=torch.long))

    @property
    def identity(self) -> bool:
        return all(k == "none" for k in self.kinds)

    # -- fitting ---------------------------------------------------------------------------------
    def fit(self, data: np.ndarray | Tensor | Callable[[], Iterable[np.ndarray]],
            columns: Sequence[str] | None = None) -> Preprocessor:
        """Fit the statistics on the training data.

        ``data`` is an array (batch, *event_shape), or, for streams larger than memory, a callable
        returning a fresh iterator of chunks (it is called twice: range, then moments). A tabular
        feature that is constant in the training data cannot be standardised (or min-max scaled):
        that raises a DataError naming it (``columns`` gives the names for the message).
        """
        if isinstance(data, (np.ndarray, Tensor)):
            array = data.detach().cpu().numpy() if isinstance(data, Tensor) else data

            def chunks() -> Iterable[np.ndarray]:
                return [array]
        else:
            chunks = data
        n_feat = self.codes.numel()
        lo, hi, count = np.full(n_feat, np.inf), np.full(n_feat, -np.inf), 0
        for chunk in chunks():
            x = self._as_2d(np.asarray(chunk, dtype=np.float64))
            if x.shape[0]:
                lo, hi = np.minimum(lo, x.min(axis=0)), np.maximum(hi, x.max(axis=0))
                count += x.shape[0]
        if count == 0:
            raise DataError("cannot fit preprocessing on empty data (0 events)")
        self.lo.copy_(torch.from_numpy(lo))
        self.hi.copy_(torch.from_numpy(np.where(hi > lo, hi, lo + 1.0)))
        codes = self.codes.numpy()
        log_cols = codes == KINDS.index("log")
        offset = 0
        for chunk in chunks() if log_cols.any() else []:
            x = self._as_2d(np.asarray(chunk, dtype=np.float64))
            negative = x[:, log_cols] < 0
            if negative.any():
                row, col = np.argwhere(negative)[0]
                raise DataError(
                    f"'log' preprocessing needs non-negative values, but feature "
                    f"{np.flatnonzero(log_cols)[col]} is negative in row {offset + row} (of the training events); "
                    "choose 'standard' for it"
                )
            offset += len(x)
        total, total_sq = np.zeros(n_feat), np.zeros(n_feat)
        for chunk in chunks():
            v = self._pre_standardise(self._as_2d(np.asarray(chunk, dtype=np.float64)))
            total, total_sq = total + v.sum(axis=0), total_sq + (v**2).sum(axis=0)
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
        standardised = np.isin(codes, [KINDS.index(k) for k in ("standard", "log", "logit")])
        scaled = standardised | (codes == KINDS.index("minmax"))
        constant = (std <= 1e-12 * np.maximum(1.0, np.abs(mean))) | (hi <= lo)
        if self.tabular and count > 1 and (constant & scaled).any():
            j = int(np.flatnonzero(constant & scaled)[0])
            name = f"'{columns[j]}'" if columns is not None and j < len(columns) else f"{j}"
            raise DataError(
                f"feature {name} is constant ({lo[j]:.6g}) in all {count} training events: '{self.kinds[j]}' "
                "preprocessing would divide by a zero spread. Drop it (--exclude / columns=) or give it "
                "preprocess 'none'.")
        std = np.where(std > 1e-12, std, 1.0)
        self.shift.copy_(torch.from_numpy(np.where(standardised, mean, 0.0)))
        self.scale.copy_(torch.from_numpy(np.where(standardised, std, 1.0)))
        self.fitted.fill_(True)
        return self

    def _as_2d(self, x: np.ndarray) -> np.ndarray:
        if self.tabular:
            if x.ndim != 2 or x.shape[1] != self.event_shape[0]:
                raise DataError(f"preprocessing expects events of shape {self.event_shape}, got {x.shape[1:]}")
            return x
        return x.reshape(-1, 1)

    def _pre_standardise(self, x: np.ndarray) -> np.ndarray:
        """The kinds' nonlinear part (before mean/std), in float64 NumPy, for fitting moments."""
        codes = self.codes.numpy()
        lo, hi = self.lo.numpy(), self.hi.numpy()
        out = x.copy()
        log_cols = codes == KINDS.index("log")
        if log_cols.any():
            out[:, log_cols] = np.log(np.clip(x[:, log_cols], 0.0, None) + self.eps)
        logit_cols = codes == KINDS.index("logit")
        if logit_cols.any():
            s = (x[:, logit_cols] - lo[logit_cols]) / (hi[logit_cols] - lo[logit_cols])
            s = self.eps + (1 - 2 * self.eps) * np.clip(s, 0.0, 1.0)
            out[:, logit_cols] = np.log(s) - np.log1p(-s)
        minmax_cols = codes == KINDS.index("minmax")
        if minmax_cols.any():
            out[:, minmax_cols] = (x[:, minmax_cols] - lo[minmax_cols]) / (hi[minmax_cols] - lo[minmax_cols])
        return out

    # -- the map ---------------------------------------------------------------------------------
    # -- the map: u = A ⊙ v(x) + B, with v the kinds' nonlinear part (log, logit) on their columns only --
    def _affine_terms(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """A, B of u = A v + B per feature, broadcastable against ``like`` (batch, *event_shape)."""
        minmax = self.codes == KINDS.index("minmax")
        width = self.hi - self.lo
        a = torch.where(minmax, 1.0 / width, 1.0 / self.scale)
        b = torch.where(minmax, -self.lo / width, -self.shift / self.scale)
        shape = (1, -1) if self.tabular else (1,) * like.dim()
        return a.to(like).reshape(shape), b.to(like).reshape(shape)

    def _columns(self, kind: str) -> list[int]:
        return [i for i, k in enumerate(self.kinds) if k == kind]

    def _squeezed(self, x: Tensor, cols: list[int]) -> Tensor:
        """s = eps + (1 - 2 eps) (x - lo) / (hi - lo), clamped to [eps, 1 - eps], on the logit columns."""
        lo, hi = self._stat("lo", cols, x), self._stat("hi", cols, x)
        return self.eps + (1 - 2 * self.eps) * torch.clamp((x - lo) / (hi - lo), 0.0, 1.0)

    def _stat(self, name: str, cols: list[int], like: Tensor) -> Tensor:
        t = getattr(self, name)[cols] if self.tabular else getattr(self, name)
        return t.to(like) if self.tabular else t.to(like).reshape((1,) * like.dim())

    def _select(self, x: Tensor, cols: list[int]) -> Tensor:
        return x[:, cols] if self.tabular else x

    def _put(self, x: Tensor, cols: list[int], values: Tensor) -> Tensor:
        if not self.tabular:
            return values
        x = x.clone()
        x[:, cols] = values
        return x

    def forward(self, x: Tensor) -> Tensor:
        """u = T(x); x: (batch, *event_shape) -> u of the same shape."""
        if self.identity:
            return x
        v = x
        log_cols, logit_cols = self._columns("log"), self._columns("logit")
        if log_cols:
            v = self._put(v, log_cols, torch.log(torch.clamp(self._select(x, log_cols), min=0.0) + self.eps))
        if logit_cols:
            s = self._squeezed(self._select(x, logit_cols), logit_cols)
            v = self._put(v, logit_cols, torch.log(s) - torch.log1p(-s))
        a, b = self._affine_terms(x)
        return v * a + b

    def inverse(self, u: Tensor) -> Tensor:
        """x = T⁻¹(u); u: (batch, *event_shape)."""
        if self.identity:
            return u
        a, b = self._affine_terms(u)
        v = (u - b) / a
        x = v
        log_cols, logit_cols = self._columns("log"), self._columns("logit")
        if log_cols:
            x = self._put(x, log_cols, torch.exp(self._select(v, log_cols)) - self.eps)
        if logit_cols:
            s = (torch.sigmoid(self._select(v, logit_cols)) - self.eps) / (1 - 2 * self.eps)
            lo, hi = self._stat("lo", logit_cols, u), self._stat("hi", logit_cols, u)
            x = self._put(x, logit_cols, lo + s * (hi - lo))
        return x

    def log_abs_det_jacobian(self, x: Tensor) -> Tensor:
        """Σ log|∂u/∂x| per event; x: (batch, *event_shape) -> (batch,)."""
        if self.identity:
            return x.new_zeros(x.shape[0])
        a, _ = self._affine_terms(x)
        per_event = int(np.prod(self.event_shape)) if not self.tabular else 1
        total = torch.log(a.abs()).sum() * per_event + x.new_zeros(x.shape[0])
        log_cols, logit_cols = self._columns("log"), self._columns("logit")
        if log_cols:
            xs = self._select(x, log_cols)
            total = total - torch.log(torch.clamp(xs, min=0.0) + self.eps).reshape(x.shape[0], -1).sum(1)
        if logit_cols:
            xs = self._select(x, logit_cols)
            s = self._squeezed(xs, logit_cols)
            lo, hi = self._stat("lo", logit_cols, x), self._stat("hi", logit_cols, x)
            d = -torch.log(s) - torch.log1p(-s) + math.log(1 - 2 * self.eps) - torch.log(hi - lo)
            total = total + d.expand_as(xs).reshape(x.shape[0], -1).sum(1)
        return total

    def is_affine(self) -> bool:
        return all(k in ("standard", "minmax", "none") for k in self.kinds)

    def extra_repr(self) -> str:
        return f"event_shape={self.event_shape}, kinds={self.kinds}"


class PreprocessorDict(nn.ModuleDict):
    """One :class:`Preprocessor` per array of a multi-array event (calorimeter layers, constituents + mask).

    Maps a dict ``{name: (batch, *shape_name)}`` to the dict of preprocessed arrays; the Jacobian term is the
    sum over arrays. ``kinds`` is one kind per array name (or one for all).
    """

    def __init__(self, event_shapes: dict[str, Sequence[int]], kinds: str | dict[str, str] = "standard"):
        modules = {}
        for name, shape in event_shapes.items():
            spec = kinds if isinstance(kinds, str) else kinds.get(name, kinds.get("*", "standard"))
            modules[name] = Preprocessor(shape, resolve_kinds(spec, int(shape[0])) if len(shape) == 1 else spec)
        super().__init__(modules)

    @property
    def identity(self) -> bool:
        return all(p.identity for p in self.values())

    @property
    def kinds(self) -> list[str]:
        return [f"{name}: {','.join(sorted(set(p.kinds)))}" for name, p in self.items()]

    def fit(self, data: dict[str, np.ndarray] | Callable[[], Iterable[dict[str, np.ndarray]]],
            columns: Sequence[str] | None = None) -> PreprocessorDict:
        """Fit each array's preprocessing; ``data`` is a dict of arrays or a callable of dict chunks."""
        for name, p in self.items():
            if callable(data):
                p.fit(lambda name=name: (chunk[name] for chunk in data()))
            else:
                p.fit(data[name])
        return self

    def forward(self, x: dict[str, Tensor]) -> dict[str, Tensor]:  # type: ignore[override]
        return {name: p(x[name]) for name, p in self.items()}

    def inverse(self, u: dict[str, Tensor]) -> dict[str, Tensor]:
        return {name: p.inverse(u[name]) for name, p in self.items()}

    def log_abs_det_jacobian(self, x: dict[str, Tensor]) -> Tensor:
        return sum(p.log_abs_det_jacobian(x[name]) for name, p in self.items())

"""Sample-based quantities the engine can monitor for early stopping and best-checkpoint choice.

Physicists pick generators by how their samples look, not by the loss. Each metric compares
``n`` samples of the model with validation events, both mapped by the model's own preprocessing
(so features of very different scales count equally); lower is better.

    w1   mean over features of the 1-D Wasserstein-1 distance (scipy)
    fpd  Fréchet distance between Gaussians fitted to the two samples
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from hepgen.data.loader import Events
from hepgen.nn.rng import seeded


def _w1(a: np.ndarray, b: np.ndarray, wa: np.ndarray | None, wb: np.ndarray | None) -> float:
    from hepgen.metrics.two_sample import wasserstein_per_feature

    return float(np.mean(wasserstein_per_feature(a, b, wa, wb)))


def _fpd(a: np.ndarray, b: np.ndarray, wa: np.ndarray | None, wb: np.ndarray | None) -> float:
    from hepgen.metrics.two_sample import frechet_distance

    def moments(x: np.ndarray, w: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        w = np.ones(len(x)) if w is None else np.asarray(w, dtype=float)
        mean = np.average(x, axis=0, weights=w)
        return mean, np.atleast_2d(np.cov(x, rowvar=False, aweights=np.abs(w), bias=True))

    return frechet_distance(*moments(a, wa), *moments(b, wb))


SAMPLE_METRICS: dict[str, Callable[..., float]] = {"w1": _w1, "fpd": _fpd}


@torch.no_grad()
def sample_metric(name: str, model: torch.nn.Module, val: Events, n: int, seed: int = 0) -> float:
    """``name`` between ``n`` model samples and up to ``n`` validation events (lower is better)."""
    n = min(n, len(val))
    rows = val.rows(0, n)
    with seeded(seed, model.device):  # sampling for the monitor must not shift the training RNG stream
        context = rows.get("context")
        samples = model.sample(n, context=context) if context is not None else model.sample(n)
    real = model.preprocessor(torch.as_tensor(rows["x"]).to(model.device, model.dtype))
    fake = model.preprocessor(samples.to(model.device, model.dtype))
    flat = lambda t: t.reshape(t.shape[0], -1).double().cpu().numpy()  # noqa: E731
    return SAMPLE_METRICS[name](flat(fake), flat(real), None, rows["w"])

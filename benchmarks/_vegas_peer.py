"""VEGAS as the peer of the phase-space benchmarks: per-call weights of a frozen, adapted grid."""

from __future__ import annotations

import numpy as np


def frozen_grid_weights(integ, f, eval_calls: int) -> np.ndarray:
    """Weights w = N_pass · wgt · f(x) of at least ``eval_calls`` calls, in whole passes of ``integ``'s frozen
    grid (``vegas.Integrator`` after adaptation): their mean estimates the integral, as a flow's f/q does."""
    ws, n = [], 0
    while n < eval_calls:
        xs, wgts = [], []
        for x, wgt in integ.random_batch():
            xs.append(np.array(x))
            wgts.append(np.array(wgt))
        x, wgt = np.concatenate(xs), np.concatenate(wgts)
        ws.append(len(x) * wgt * f(x))
        n += len(x)
    return np.concatenate(ws)

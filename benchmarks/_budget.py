"""Training to a CPU-time budget, epoch by epoch: the one mechanism of the benchmarks that compare models "at equal
training time" (gan_architectures.py, jets_anomaly.py's pixel_cnn).

    epochs, used = fit_for_budget(lambda epoch: model.fit(x, epochs=epoch, run_dir=run, resume=epoch > 1, ...),
                                  budget=900.0, max_epochs=1000)

``fit_epoch(epoch)`` trains up to epoch ``epoch`` (1, 2, …), a resumed fit from the run directory after the first
(weights, optimiser state and RNG carry on). The CPU time of this process (``time.process_time``; run with one
thread) is summed over the calls, and training stops after the first epoch that reaches the budget, so it overshoots
by at most one epoch: a caller whose epoch is long against the budget makes its "epoch" a slice of the data.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def fit_for_budget(fit_epoch: Callable[[int], object], budget: float, max_epochs: int) -> tuple[int, float]:
    """Call ``fit_epoch(1), fit_epoch(2), …`` until ``budget`` CPU seconds are spent (or ``max_epochs``): returns
    (epochs trained, CPU seconds they took)."""
    used, epoch = 0.0, 0
    while used < budget and epoch < max_epochs:
        epoch += 1
        start = time.process_time()
        fit_epoch(epoch)
        used += time.process_time() - start
    return epoch, used

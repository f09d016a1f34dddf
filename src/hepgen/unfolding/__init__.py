"""Unfolding detector effects: iterative Bayesian unfolding (binned), OmniFold (classifier reweighting), a
conditional-flow posterior p(x | y) (cINN style) and marginal-likelihood unfolding (neural empirical Bayes),
on simulated truth/reco pairs and observed reco data; :func:`unfold` runs any of them on arrays or files."""

from hepgen.unfolding.api import METHODS, UnfoldingResult, read_inputs, unfold
from hepgen.unfolding.ibu import ibu
from hepgen.unfolding.inputs import UnfoldingInputs, check_inputs

__all__ = ["METHODS", "UnfoldingInputs", "UnfoldingResult", "check_inputs", "ibu", "read_inputs", "unfold"]

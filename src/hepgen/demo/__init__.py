"""The demo and the figure galleries: above every family, imported by none of them.

:func:`run_demo` (``make demo`` / ``hepgen demo``) is the main end-to-end job on the shipped jets:
fit, sample, score and compare density models through the Python API, add each family's figures
(:mod:`hepgen.demo.figures`) and write one HTML report. The families never import this package; it
imports the families, :mod:`hepgen.report` and the data layer, and not :mod:`hepgen.cli`.
"""

from hepgen.demo.job import (
    DENSITY_MODELS,
    STEP_TIMES,
    demo_data,
    family_figures,
    run_demo,
)

__all__ = ["DENSITY_MODELS", "STEP_TIMES", "demo_data", "family_figures", "run_demo"]

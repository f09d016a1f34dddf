"""Calorimeter showers: conditional generative surrogates of the calo simulator and their evaluation.

``hepgen.calo.gan.CaloGAN`` (``calo-gan``), ``hepgen.calo.caloflow.CaloFlow`` (``calo-flow``), the shower layout
(:mod:`hepgen.calo.shower_layout`) and the CaloChallenge-style comparison (:mod:`hepgen.calo.compare`).
Submodules are imported on use.
"""

"""hepgen: generative models for particle physics — learn what data look like without labels.

Public API: the model classes (``hepgen.Gaussian``, ``hepgen.NSF``, ``hepgen.VAE``, ``hepgen.GAN`` ...),
:func:`load`, the data layer (:mod:`hepgen.data`), metrics (:mod:`hepgen.metrics`) and reports
(:mod:`hepgen.report`). Names are imported on first use, so ``import hepgen.train`` (or any lower
layer) does not pull in the model families. The top level also tells the model registry which module
defines each built-in model (the class registers itself there), so ``hepgen fit NAME`` and
:func:`load` find every family while importing only the one they need.
"""

from __future__ import annotations

import importlib
from typing import Any

from hepgen import registry as _registry
from hepgen._version import __version__
from hepgen.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    HepgenError,
    TrainingError,
)

#: CLI name -> the module whose import registers it: every built-in model ``hepgen fit NAME`` can train
_MODELS = {
    "gaussian": "hepgen.gaussian",
    "nsf": "hepgen.flows.zoo", "maf": "hepgen.flows.zoo", "iaf": "hepgen.flows.zoo", "realnvp": "hepgen.flows.zoo",
    "ae": "hepgen.autoencoders.ae", "conv-ae": "hepgen.autoencoders.ae", "dae": "hepgen.autoencoders.ae",
    "vae": "hepgen.autoencoders.vae", "conv-vae": "hepgen.autoencoders.vae",
    "gan": "hepgen.gans.gan", "wgan": "hepgen.gans.gan", "wgan-gp": "hepgen.gans.gan", "cgan": "hepgen.gans.gan",
    "conv-gan": "hepgen.gans.gan", "cyclegan": "hepgen.gans.cyclegan", "big-gan": "hepgen.gans.biggan",
    "style-gan": "hepgen.gans.stylegan",
    "stack-gan": "hepgen.gans.stackgan",
    "calo-gan": "hepgen.calo.gan", "calo-flow": "hepgen.calo.caloflow",
    "classifier": "hepgen.classifier", "pivot": "hepgen.jets.taggers", "disco": "hepgen.jets.taggers",
    "phi4-flow": "hepgen.lattice.phi4_flow", "lattice-flow": "hepgen.lattice.flow",
    "hypercube-flow": "hepgen.phasespace.hypercube_flow", "phase-space-flow": "hepgen.phasespace.phase_space_flow",
    "pixel-cnn": "hepgen.autoregressive.pixelcnn",
}
for _name, _module in _MODELS.items():
    _registry.REGISTRY.declare(_name, _module)

#: public name -> the module that defines it
_LAZY = {
    "Phi4Flow": "hepgen.lattice", "LatticeFlow": "hepgen.lattice",
    "CaloGAN": "hepgen.calo.gan", "CaloFlow": "hepgen.calo.caloflow",
    "DesignStudy": "hepgen.calo.design", "optimise_design": "hepgen.calo.design",
    "HypercubeFlow": "hepgen.phasespace", "PhaseSpaceFlow": "hepgen.phasespace",
    "make_target": "hepgen.targets",
    "Gaussian": "hepgen.gaussian",
    "Flow": "hepgen.flows", "NSF": "hepgen.flows", "MAF": "hepgen.flows", "IAF": "hepgen.flows",
    "RealNVP": "hepgen.flows",
    "Autoencoder": "hepgen.autoencoders", "ConvAutoencoder": "hepgen.autoencoders",
    "DenoisingAutoencoder": "hepgen.autoencoders", "VAE": "hepgen.autoencoders", "ConvVAE": "hepgen.autoencoders",
    "GAN": "hepgen.gans", "WGAN": "hepgen.gans", "WGANGP": "hepgen.gans", "CGAN": "hepgen.gans",
    "ConvGAN": "hepgen.gans", "CycleGAN": "hepgen.gans", "BigGAN": "hepgen.gans",
    "StyleGAN": "hepgen.gans",
    "StackGAN": "hepgen.gans",
    "PixelCNN": "hepgen.autoregressive",
    "Model": "hepgen.models", "DensityModel": "hepgen.density", "REGISTRY": "hepgen.registry", "load": "hepgen.models",
    "Engine": "hepgen.train.engine",
    "unfold": "hepgen.unfolding",
    "Classifier": "hepgen.classifier", "Pivot": "hepgen.jets", "DisCo": "hepgen.jets",
}

__all__ = [*sorted(_LAZY), "CheckpointError", "ConfigError", "DataError", "HepgenError", "TrainingError", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hepgen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

"""hepgen: generative models for particle physics — learn what data look like without labels.

Public API: the model classes (``hepgen.Gaussian``, ``hepgen.NSF``, ``hepgen.VAE``, ``hepgen.GAN`` ...), :func:`load`, the
data layer (:mod:`hepgen.data`), metrics (:mod:`hepgen.metrics`) and reports (:mod:`hepgen.report`).
"""

__version__ = "0.1.0"

from hepgen.autoencoders import VAE, Autoencoder, ConvAutoencoder, ConvVAE, DenoisingAutoencoder
from hepgen.errors import CheckpointError, ConfigError, DataError, HepgenError, TrainingError
from hepgen.flows import IAF, MAF, NSF, Flow, RealNVP
from hepgen.gans import CGAN, GAN, WGAN, WGANGP, ConvGAN, CycleGAN
from hepgen.gaussian import Gaussian
from hepgen.models import REGISTRY, Model
from hepgen.train.checkpoint import load
from hepgen.train.engine import Engine

__all__ = [
    "CGAN", "GAN", "IAF", "MAF", "NSF", "REGISTRY", "VAE", "WGAN", "WGANGP", "Autoencoder", "CheckpointError",
    "ConfigError", "ConvAutoencoder", "ConvGAN", "ConvVAE", "CycleGAN", "DataError", "DenoisingAutoencoder",
    "Engine", "Flow", "Gaussian", "HepgenError", "Model", "RealNVP", "TrainingError", "load",
]

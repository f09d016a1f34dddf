"""Autoencoders and variational autoencoders: x → z = f(x) → x̂ = g(z).

Models: :class:`Autoencoder`, :class:`ConvAutoencoder`, :class:`DenoisingAutoencoder` (reconstruction
error as anomaly score), :class:`VAE`, :class:`ConvVAE` (ELBO and importance-weighted log p(x)).
"""

from hepgen.autoencoders.ae import Autoencoder, ConvAutoencoder, DenoisingAutoencoder
from hepgen.autoencoders.vae import VAE, ConvVAE

__all__ = ["Autoencoder", "ConvAutoencoder", "ConvVAE", "DenoisingAutoencoder", "VAE"]

"""Autoencoders and variational autoencoders: x → z = f(x) → x̂ = g(z).

Models: :class:`Autoencoder`, :class:`ConvAutoencoder`, :class:`DenoisingAutoencoder` (reconstruction
error as anomaly score), :class:`VAE`, :class:`ConvVAE` (ELBO and importance-weighted log p(x)).
Anomaly detection helpers (:func:`evaluate_detector`, :func:`anomaly_metrics`, :func:`feature_breakdown`,
:func:`jet_images`) live in :mod:`hepgen.autoencoders.anomaly`; disentangled latents of a (β-)VAE (traversals, KL per
latent, MI and correlations with physical quantities) are judged in the evaluation layer,
:func:`hepgen.evaluate.disentanglement`.
"""

from hepgen.autoencoders.ae import Autoencoder, ConvAutoencoder, DenoisingAutoencoder
from hepgen.autoencoders.anomaly import AnomalyResult, anomaly_metrics, evaluate_detector, feature_breakdown, jet_images
from hepgen.autoencoders.vae import VAE, ConvVAE

__all__ = ["AnomalyResult", "Autoencoder", "ConvAutoencoder", "ConvVAE", "DenoisingAutoencoder", "VAE",
           "anomaly_metrics", "evaluate_detector", "feature_breakdown", "jet_images"]

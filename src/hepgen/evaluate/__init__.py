"""The evaluation layer: judgements that need a trained model, above the families and below the applications.

* :mod:`~hepgen.evaluate.classifiers` — the one classifier factory (``hgb`` boosted trees; ``dnn`` a hepgen
  :class:`~hepgen.classifier.Classifier` trained by the engine), used by the two-sample tests and by
  OmniFold and the posterior unfolding;
* :mod:`~hepgen.evaluate.two_sample` — the classifier two-sample test (C2ST), cross-fitted or on a
  train / validation / test split, used by ``compare``;
* :mod:`~hepgen.evaluate.latents` — disentangled latents of a (β-)VAE: traversals, KL per latent, and how each
  latent tracks physical quantities (:mod:`~hepgen.evaluate.disentanglement`: scikit-learn's KSG mutual
  information, correlations, MIG), behind ``hepgen report latents``;
* :mod:`~hepgen.evaluate.calochallenge` — the evaluation of showers: hepgen's light classifier test and the
  CaloChallenge 2022 protocol (its DNN with calibration, FPD/KPD, separation powers).

Pure functions of arrays (AUCs of given scores, distances, histograms) stay in :mod:`hepgen.metrics`.
Importing this package loads no family: the network is built when a ``dnn`` is fitted.
"""

from hepgen.evaluate.calochallenge import ShowerSample, calochallenge_metrics, classifier_auc
from hepgen.evaluate.classifiers import CLASSIFIERS, make_classifier
from hepgen.evaluate.latents import LatentAnalysis, disentanglement, latent_kl, latent_traversals
from hepgen.evaluate.two_sample import HeldOutScores, c2st_auc, c2st_scores, held_out_scores

__all__ = ["CLASSIFIERS", "HeldOutScores", "LatentAnalysis", "ShowerSample", "c2st_auc", "c2st_scores",
           "calochallenge_metrics", "classifier_auc", "disentanglement", "held_out_scores", "latent_kl",
           "latent_traversals", "make_classifier"]

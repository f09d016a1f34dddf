"""The families' figure galleries, one module per family, each with one entry point the demo calls:

* :func:`hepgen.demo.figures.flows.toy_gallery` — flows on 2-D toys, data next to the learned density;
* :func:`hepgen.demo.figures.autoencoders.autoencoder_figures` — ConvAE vs PCA, interpolations,
  samples and anomaly detection on top/W jets;
* :func:`hepgen.demo.figures.gans.gan_lab_figure` — the GAN-Lab view of a WGAN-GP on the 8-Gaussian ring.

Each trains the models it shows (seeded) through the public API and writes PNGs and a JSON summary.
Modules are imported on use (``from hepgen.demo.figures.gans import gan_lab_figure``), so importing
this package pulls in no family.
"""

"""GANs: minimax to WGAN-GP, conditional and convolutional GANs, a class-conditional BigGAN, StyleGAN2, the two-stage
StackGAN, CycleGAN, and their diagnostics.

    θ* = argmin_θ max_φ V(φ, θ)   (generator θ against critic φ, alternating steps)
"""

from hepgen.gans.biggan import BigGAN
from hepgen.gans.cyclegan import CycleGAN
from hepgen.gans.gan import CGAN, GAN, WGAN, WGANGP, ConvGAN
from hepgen.gans.losses import LOSSES, get_loss
from hepgen.gans.stackgan import StackGAN
from hepgen.gans.stylegan import StyleGAN

__all__ = ["BigGAN", "CGAN", "CycleGAN", "ConvGAN", "GAN", "LOSSES", "StackGAN", "StyleGAN", "WGAN", "WGANGP",
           "get_loss"]

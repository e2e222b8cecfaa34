"""The sRb-VAE model: config, networks and the inference module."""

from rbedit.model.config import ModelConfig
from rbedit.model.rbvae import Posterior, RbVAE

__all__ = ["ModelConfig", "Posterior", "RbVAE"]

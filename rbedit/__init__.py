"""rbedit: edit faces and digits with reference-based variational autoencoders."""

__version__ = "0.1.0"

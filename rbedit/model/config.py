"""The model's one typed config: it builds the networks and is saved as config.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

# 2: e_prior (a checkpoint may carry the Gaussian its samples of e are drawn from).
# 3: level_convs (a checkpoint's networks may have two convolutions per level).
# 4: encoder_convs (Z and E may have more convolutions per level than G).
FORMAT_VERSION = 4
DOMAINS = ("digits", "faces")
E_INJECTIONS = ("input", "every-level", "levels-only")
E_PRIORS = ("standard", "fitted")


@dataclass(frozen=True)
class ModelConfig:
    domain: str = "digits"  # "digits" or "faces": decides the input preparation
    image_size: int = 32  # square model resolution, a power of two ≥ 8
    z_dim: int = 32  # common factors (identity / which digit)
    e_dim: int = 32  # target factors (expression / digit style)
    # Channels per resolution level, from image_size down to 4×4 (log2(size/4)+1 entries).
    channels: tuple[int, ...] = (32, 64, 128, 128)
    # 3×3 convolutions per level in G, and in Z and E unless encoder_convs is set:
    # 1 (Appendix D as rbedit reads it) or 2 (rbedit extension, as Karras et al.'s
    # blocks; such networks need the learning rate warmed up to start training, see
    # docs/digits.md).
    level_convs: int = 1
    # rbedit extension: 3×3 convolutions per level in Z and E alone, when they differ
    # from G's (None: level_convs). On digits, two kept as many digits as two
    # everywhere and each step cost as much (the cycles re-encode G's drawings), but
    # transfers carried style worse (docs/digits.md, "Deeper encoders in the sRb-VAE").
    encoder_convs: int | None = None
    # rbedit extension: E sees the image averaged over e_pool×e_pool blocks, so it
    # cannot read fine shape (1: off; on digits it did not help, see docs/digits.md).
    e_pool: int = 1
    # rbedit extension: E sees grey levels only (the mean of the colour channels), so
    # e cannot carry colour (eye, skin, hair) (False: off; on synthetic faces z did not
    # take the eye colour up instead, see docs/faces-synth.md).
    e_grey: bool = False
    # rbedit extension: Z sees only the ink's shape: grey levels scaled so that each
    # image's brightest pixel is white, so z can carry neither colour nor brightness
    # (False: off; digits, whose ink colour is a target factor, see docs/digits.md).
    z_shape: bool = False
    # Where e enters the generator: "input" (the paper: with z, into the first
    # layer), "every-level" (also scales and shifts each level's channels) or
    # "levels-only" (only there; the first layer sees z alone). rbedit extension;
    # the digits preset uses levels-only (see docs/digits.md).
    e_inject: str = "input"
    # rbedit extension: e also sets an affine warp (zoom, shift, rotation, shear)
    # of G's drawing, so that e can decide where and how large G draws what z
    # holds (False: off; in its one digits run e took the digit, see docs/digits.md).
    e_warp: bool = False
    # What `sample` draws e from: "standard" (the paper's prior N(0, I)) or "fitted"
    # (rbedit extension: a Gaussian fitted to the training images' aggregate posterior
    # q(e), stored beside the weights as e_prior_mean and e_prior_scale_tril). The
    # encoder's e does not fill N(0, I), so prior draws miss the data's styles (half
    # their spread, other sizes and widths) and lose more digits (docs/digits.md,
    # "Sampling e where the data is").
    e_prior: str = "standard"
    # Faces only: mean landmark shape in crop pixel coordinates, 68 (x, y) pairs.
    template: tuple[tuple[float, float], ...] | None = None
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)  # free-form provenance (objective, run, ...)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {DOMAINS}, got {self.domain!r}")
        levels = self.image_size.bit_length() - 2  # 8→2, 32→4, 64→5
        if self.image_size < 8 or self.image_size & (self.image_size - 1):
            raise ValueError(f"image_size must be a power of two ≥ 8, got {self.image_size}")
        if len(self.channels) != levels:
            raise ValueError(
                f"channels needs {levels} entries for image_size {self.image_size} "
                f"(one per level down to 4×4), got {len(self.channels)}"
            )
        if self.level_convs < 1:
            raise ValueError(f"level_convs must be at least 1, got {self.level_convs}")
        if self.encoder_convs is not None and self.encoder_convs < 1:
            raise ValueError(f"encoder_convs must be at least 1 (or None: level_convs), got {self.encoder_convs}")
        if self.e_pool < 1 or self.e_pool & (self.e_pool - 1) or self.e_pool > self.image_size:
            raise ValueError(f"e_pool must be a power of two from 1 to image_size, got {self.e_pool}")
        if self.e_inject not in E_INJECTIONS:
            raise ValueError(f"e_inject must be one of {E_INJECTIONS}, got {self.e_inject!r}")
        if self.e_prior not in E_PRIORS:
            raise ValueError(f"e_prior must be one of {E_PRIORS}, got {self.e_prior!r}")
        if self.format_version > FORMAT_VERSION:
            raise ValueError(
                f"checkpoint format {self.format_version} is newer than this rbedit "
                f"understands ({FORMAT_VERSION}); upgrade rbedit"
            )

    @property
    def encoder_level_convs(self) -> int:
        """3×3 convolutions per level in Z and E."""
        return self.level_convs if self.encoder_convs is None else self.encoder_convs

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config fields: {', '.join(unknown)}")
        data = dict(data)
        data["channels"] = tuple(data.get("channels", cls.channels))
        if data.get("template") is not None:
            data["template"] = tuple(tuple(map(float, p)) for p in data["template"])
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

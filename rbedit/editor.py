"""The Python API: load a model, then transfer, sample, neutralize, reconstruct, encode.

    import rbedit
    editor = rbedit.load("digits")                 # or a folder, or "org/repo@rev"
    out = editor.transfer("style.png", "digit.png")  # digit.png with style.png's e
    grid = editor.sample("digit.png", n=8, seed=0)
    rbedit.load("digits", refine=30)               # latents fitted by 30 steps past the encoder's

Images may be file paths, PIL images, numpy arrays ((H, W[, C]) or a batch
(B, H, W, C); uint8, or float in [0, 1]) or torch tensors. Paths, PIL images
and arrays are raw pictures: they go through the domain's preparation (digit
centring, face alignment) first. Tensors are taken as already-prepared model
inputs: (3, S, S) or (B, 3, S, S) floats in the model range [-1, 1].
Results come back in the kind they went in: PIL images for paths and PIL
images, uint8 arrays (S, S, 3) / (B, S, S, 3) for arrays, tensors in [-1, 1]
for tensors; a list in gives a list out. Faces give the edited aligned crop
(the CLI pastes it back into the photo).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
from PIL import Image

from rbedit.checkpoint import load_checkpoint
from rbedit.devices import resolve_device
from rbedit.hub import ResolvedModel, resolve_model
from rbedit.imageio import Picture, from_array, from_pil, read_image
from rbedit.model import ModelConfig, RbVAE
from rbedit.model.config import E_PRIORS
from rbedit.pixels import model_to_uint8, uint8_to_model
from rbedit.prepare import prepare

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, torch.Tensor]
DEFAULT_BATCH_SIZE = 64


@dataclass
class Latents:
    """Posterior means (refined when the editor refines): z (B, z_dim) common factors, e (B, e_dim) target factors."""

    z: Any  # numpy float32, or torch tensor when the input was a tensor
    e: Any


class Editor:
    """An sRb-VAE ready to edit images; build it with `rbedit.load`."""

    def __init__(
        self,
        model: RbVAE,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        landmarks: str = "dlib",
        face: str = "largest",
        source: ResolvedModel | None = None,
        refine: int = 0,
    ) -> None:
        """refine: Adam steps that fit each image's z and e past the encoder's means (RbVAE.refine; 0: none)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
        if refine < 0:
            raise ValueError(f"refine must be ≥ 0 steps, got {refine}")
        self.model = model.eval()
        self.batch_size = batch_size
        self.refine = refine
        self.landmarks = landmarks
        self.face = face
        self.source = source

    @property
    def config(self) -> ModelConfig:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    def __repr__(self) -> str:
        ref = self.source.ref if self.source else "model"
        return f"Editor({ref!r}, domain={self.config.domain!r}, size={self.config.image_size}, device={self.device})"

    # Tensor methods take prepared model inputs (B, 3, S, S) in [-1, 1], split by batch_size.

    @staticmethod
    def to_model(images: np.ndarray) -> torch.Tensor:
        """Prepared uint8 (B, S, S, 3) or (S, S, 3) → contiguous float (B, 3, S, S) in [-1, 1].

        Contiguous (NCHW) matters: a permuted NHWC view runs the convolutions
        about twice as slowly on CPU.
        """
        return uint8_to_model(images).contiguous()

    def encode_tensor(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (z, e) of prepared inputs x (B, 3, S, S): posterior means, refined by `refine` steps."""
        zs, es = [], []
        for i in range(0, len(x), self.batch_size):
            chunk = x[i : i + self.batch_size].to(self.device)
            if self.refine:  # gradient steps: outside inference mode
                z, e = self.model.refine(chunk, self.refine)
            else:
                with torch.inference_mode():
                    z, e = self.model.encode_z(chunk).mu, self.model.encode_e(chunk).mu
            zs.append(z)
            es.append(e)
        if not zs:
            return x.new_zeros((0, self.config.z_dim)), x.new_zeros((0, self.config.e_dim))
        return torch.cat(zs), torch.cat(es)

    def _decode(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """G(z, e) in batches; e is (B, e_dim), or (1, e_dim) for every row."""
        e = e.to(self.device)
        e = e.expand(len(z), -1) if len(e) == 1 else e
        b = self.batch_size
        with torch.inference_mode():
            parts = [self.model.decode(z[i : i + b], e[i : i + b]) for i in range(0, len(z), b)]
        size = self.config.image_size
        return torch.cat(parts) if parts else z.new_zeros((0, 3, size, size))

    def blend_e(self, e: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """e_r + α (e − e_r): α = 0 is the reference (neutral), 1 is e itself."""
        e_ref = self.model.e_ref.detach()
        return e_ref + strength * (e.to(e_ref.device) - e_ref)

    def transfer_tensor(self, x: torch.Tensor, e_source: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        """G(z_x, e_r + α (e_source − e_r)) for every x; e_source is (e_dim,), (1, e_dim) or (B, e_dim)."""
        e = self.blend_e(e_source, strength)
        e = e[None] if e.ndim == 1 else e
        if len(e) not in (1, len(x)):
            raise ValueError(f"e_source has {len(e)} rows for {len(x)} images")
        z, _ = self.encode_tensor(x)
        return self._decode(z, e)

    def neutralize_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """G(z_x, e_r): the neutral face / plain white thin digit."""
        z, _ = self.encode_tensor(x)
        return self._decode(z, self.model.e_ref.detach()[None])

    def reconstruct_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """G(z_x, e_x) from the latents of x."""
        return self._decode(*self.encode_tensor(x))

    def sample_e(
        self, n: int, *, seed: int | None = None, temperature: float = 1.0, prior: str | None = None
    ) -> torch.Tensor:
        """n draws of e, (n, e_dim), with the noise scaled by T.

        prior: "fitted" (the Gaussian the checkpoint carries: mean + T · L·noise), "standard"
        (the paper's N(0, T² I)) or None (fitted when the checkpoint has one). The noise is
        drawn on the CPU so a seed gives the same e on any device.
        """
        prior = prior or self.config.e_prior
        if prior not in E_PRIORS:
            raise ValueError(f"prior must be one of {E_PRIORS}, got {prior!r}")
        if prior == "fitted" and self.config.e_prior != "fitted":
            raise ValueError("this model carries no fitted prior of e; sample with prior='standard'")
        generator = torch.Generator()
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        noise = (torch.randn((n, self.config.e_dim), generator=generator) * temperature).to(self.device)
        if prior == "standard":
            return noise
        with torch.inference_mode():
            return self.model.prior_e(noise)

    def sample_tensor(
        self,
        x: torch.Tensor,
        n: int,
        *,
        seed: int | None = None,
        temperature: float = 1.0,
        prior: str | None = None,
    ) -> torch.Tensor:
        """n images G(z_x, e_k) for one prepared input x (1, 3, S, S) or (3, S, S)."""
        if x.ndim == 3:
            x = x[None]
        z, _ = self.encode_tensor(x[:1])
        e = self.sample_e(n, seed=seed, temperature=temperature, prior=prior)
        return self._decode(z.expand(n, -1), e)

    # Image methods take raw pictures and return the kind they were given.

    def prepare(self, image: ImageLike) -> np.ndarray:
        """What the model sees for a raw picture: (S, S, 3) uint8 (faces: the selected face's crop)."""
        return prepare(_to_picture(image), self.config, landmarks=self.landmarks, face=self.face)[0].input

    def encode(self, images: ImageLike | Sequence[ImageLike]) -> Latents:
        """Posterior means z and e: arrays (B, dim), or (dim,) for a single image."""
        batch = self._inputs(images)
        z, e = self.encode_tensor(batch.x)
        if batch.tensor_in:
            return Latents(z[0] if batch.single else z, e[0] if batch.single else e)
        z_np, e_np = z.float().cpu().numpy(), e.float().cpu().numpy()
        return Latents(z_np[0] if batch.single else z_np, e_np[0] if batch.single else e_np)

    def transfer(self, source: ImageLike, target: ImageLike | Sequence[ImageLike], *, strength: float = 1.0):
        """target with source's target factors: G(z_target, e_r + α (e_source − e_r))."""
        src = self._inputs(source)
        if not src.single:
            raise ValueError("transfer takes one source image")
        _, e_source = self.encode_tensor(src.x)
        batch = self._inputs(target)
        return batch.restore(self.transfer_tensor(batch.x, e_source[0], strength))

    def neutralize(self, images: ImageLike | Sequence[ImageLike]):
        """Each image with e := e_r (neutral expression / plain digit style)."""
        batch = self._inputs(images)
        return batch.restore(self.neutralize_tensor(batch.x))

    def reconstruct(self, images: ImageLike | Sequence[ImageLike]):
        """Each image decoded from its posterior means."""
        batch = self._inputs(images)
        return batch.restore(self.reconstruct_tensor(batch.x))

    def sample(
        self,
        image: ImageLike,
        n: int = 8,
        *,
        seed: int | None = None,
        temperature: float = 1.0,
        prior: str | None = None,
    ):
        """n versions of one image keeping z, with new e (see sample_e): a list (PIL), (n, S, S, 3) array or (n, 3, S, S) tensor."""
        batch = self._inputs(image)
        if not batch.single:
            raise ValueError("sample takes one image")
        out = self.sample_tensor(batch.x, n, seed=seed, temperature=temperature, prior=prior)
        kind = batch.kinds[0]
        many = _Batch(out, False, [kind] * n, batch.alphas * n, batch.tensor_device, batch.tensor_in, kind == "array")
        return many.restore(out)

    def _inputs(self, images: ImageLike | Sequence[ImageLike]) -> "_Batch":
        size = self.config.image_size
        if isinstance(images, torch.Tensor):
            x = images
            single = x.ndim == 3
            if single:
                x = x[None]
            if x.ndim != 4 or tuple(x.shape[1:]) != (3, size, size):
                raise ValueError(
                    f"tensors must be prepared model inputs (B, 3, {size}, {size}) in [-1, 1], got {tuple(images.shape)}"
                )
            return _Batch(x.float().contiguous(), single, ["tensor"] * len(x), [None] * len(x), images.device, tensor_in=True)
        if isinstance(images, np.ndarray) and images.ndim == 4:
            return self._from_pictures([from_array(a) for a in images], ["array"] * len(images), single=False, stacked=True)
        if isinstance(images, (str, os.PathLike, Image.Image, np.ndarray)):
            return self._from_pictures([_to_picture(images)], [_kind(images)], single=True)
        items = list(images)
        if not items:
            raise ValueError("no images given")
        if all(isinstance(i, torch.Tensor) for i in items):
            return self._inputs(torch.stack([i if i.ndim == 3 else i[0] for i in items]))._as_list()
        return self._from_pictures([_to_picture(i) for i in items], [_kind(i) for i in items], single=False)

    def _from_pictures(self, pictures: list[Picture], kinds: list[str], *, single: bool, stacked: bool = False):
        prepared = [prepare(p, self.config, landmarks=self.landmarks, face=self.face)[0] for p in pictures]
        x = self.to_model(np.stack([p.input for p in prepared]))
        return _Batch(x, single, kinds, [p.alpha for p in prepared], None, stacked=stacked)


@dataclass
class _Batch:
    """Prepared inputs and how to hand results back in the kind they came in."""

    x: torch.Tensor  # (B, 3, S, S) in [-1, 1]
    single: bool
    kinds: list[str]  # per image: "pil", "array" or "tensor"
    alphas: list[np.ndarray | None]
    tensor_device: torch.device | None
    tensor_in: bool = False
    stacked: bool = False  # a (B, H, W, C) array in gives one (B, S, S, 3) array out
    as_list: bool = False

    def _as_list(self) -> "_Batch":
        self.as_list = True
        return self

    def restore(self, y: torch.Tensor):
        if self.tensor_in:
            y = y.to(self.tensor_device)
            if self.single:
                return y[0]
            return list(y) if self.as_list else y
        arrays = model_to_uint8(y)  # (B, S, S, 3)
        if self.stacked:
            return arrays
        outs = []
        for i, array in enumerate(arrays):
            kind = self.kinds[i] if i < len(self.kinds) else self.kinds[-1]
            alpha = self.alphas[i] if i < len(self.alphas) else None
            outs.append(_to_kind(array, alpha, kind))
        return outs[0] if self.single else outs


def _kind(image: ImageLike) -> str:
    return "array" if isinstance(image, np.ndarray) else "pil"


def _to_picture(image: ImageLike) -> Picture:
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if isinstance(image, Image.Image):
        return from_pil(image)
    if isinstance(image, np.ndarray):
        return from_array(image)
    raise TypeError(f"expected a path, PIL image, numpy array or torch tensor, got {type(image).__name__}")


def _to_kind(array: np.ndarray, alpha: np.ndarray | None, kind: str):
    if kind == "array":
        return array
    if alpha is not None:
        return Image.fromarray(np.dstack([array, alpha]), "RGBA")
    return Image.fromarray(array, "RGB")


def load(
    model: str | os.PathLike | None = None,
    *,
    device: str | torch.device = "auto",
    batch_size: int = DEFAULT_BATCH_SIZE,
    landmarks: str = "dlib",
    face: str = "largest",
    refine: int = 0,
) -> Editor:
    """Load an editor from a model reference.

    model: an embedded name ("digits"), a checkpoint folder, or a Hub id
    "ORG/REPO[@REV]"; None uses $RBEDIT_MODEL, else "digits".
    device: "auto" (CUDA when present), "cpu", "cuda", "cuda:N"; a missing
    explicit device raises DeviceError.
    refine: gradient steps that fit each image's latents past the encoder's
    means before editing (RbVAE.refine): slower, and keeps more of the image.
    """
    resolved = resolve_model(model)
    net = load_checkpoint(resolved.folder, device=resolve_device(device))
    return Editor(net, batch_size=batch_size, landmarks=landmarks, face=face, source=resolved, refine=refine)

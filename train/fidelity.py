"""Edit fidelity, read by the judge: transfer, sampling and reference decoding (DESIGN §3).

- transfer: O = G(z_B, e_A) for held-out pairs; does O carry A's style and B's digit?
- sampling: O = G(z_B, e ~ N(0, I)); is B's digit kept, and how much does the style vary?
- reference decoding: O = G(z_x, e_r); does O look like the reference style?
All latents are posterior means, as the editor uses them.
"""

from __future__ import annotations

import numpy as np
import torch

from rbedit.model import RbVAE
from train.data.digits import FACTOR_NAMES, REFERENCE_FACTORS, DigitSet
from train.judge import Judge, read_images
from train.probe import Latents


def _per_factor(values: np.ndarray) -> dict:
    return {n: float(v) for n, v in zip(FACTOR_NAMES, values)}


@torch.no_grad()
def _decode_and_read(model: RbVAE, judge: Judge, z: np.ndarray, e: np.ndarray, *, batch_size: int):
    """G(z, e) for (N, z_dim), (N, e_dim) latents, read by the judge batch by batch."""
    model.eval()
    factors, digits = [], []
    for start in range(0, len(z), batch_size):
        zb = torch.from_numpy(z[start : start + batch_size]).to(model.device, torch.float32)
        eb = torch.from_numpy(e[start : start + batch_size]).to(model.device, torch.float32)
        reading = read_images(judge, model.decode(zb, eb), batch_size=batch_size)
        factors.append(reading.factors)
        digits.append(reading.digits)
    return np.concatenate(factors), np.concatenate(digits)


def draw_pairs(labels: np.ndarray, count: int, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` index pairs (A, B) with different digits, so "B's digit kept" cannot be A's by chance."""
    if len(np.unique(labels)) < 2:
        raise ValueError("transfer pairs need images of at least two different digits")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(labels), size=count)
    b = rng.integers(0, len(labels), size=count)
    same = labels[a] == labels[b]
    while same.any():
        b[same] = rng.integers(0, len(labels), size=int(same.sum()))
        same = labels[a] == labels[b]
    return a, b


def transfer_fidelity(
    model: RbVAE, judge: Judge, data: DigitSet, latents: Latents, *, pairs: int, seed: int, batch_size: int = 256
) -> dict:
    """O = G(z_B, e_A): judged style MAE against A's true factors, share of O read as B's digit."""
    a, b = draw_pairs(data.labels, pairs, seed=seed)
    factors, digits = _decode_and_read(model, judge, latents.z[b], latents.e[a], batch_size=batch_size)
    mae = np.abs(factors - data.factors[a]).mean(axis=0)
    # What an editor that ignored e_A would score: B's own style against A's.
    untouched = np.abs(data.factors[b] - data.factors[a]).mean(axis=0)
    return {
        "pairs": int(pairs),
        "style_mae": _per_factor(mae),
        "style_mae_average": float(mae.mean()),
        "identity_kept": float((digits == data.labels[b]).mean()),
        "source_digit_share": float((digits == data.labels[a]).mean()),
        "no_transfer_style_mae_average": float(untouched.mean()),
        "style_source": style_source(factors, data.factors[a], data.factors[b]),
    }


def style_source(judged: np.ndarray, source: np.ndarray, target: np.ndarray) -> dict:
    """Per factor, the least-squares fit judged ≈ s · A's + t · B's + c, as {"source": s, "target": t}.

    A faithful transfer reads s = 1, t = 0; one that ignored e_A, s = 0, t = 1. The
    MAE alone cannot tell a transfer that splits the difference from a noisy one.
    """
    fits = {}
    for k, name in enumerate(FACTOR_NAMES):
        design = np.stack([source[:, k], target[:, k], np.ones(len(judged))], axis=1)
        (s, t, _), *_ = np.linalg.lstsq(design, judged[:, k], rcond=None)
        fits[name] = {"source": float(s), "target": float(t)}
    return fits


def sampling_fidelity(
    model: RbVAE,
    judge: Judge,
    data: DigitSet,
    latents: Latents,
    *,
    images: int,
    samples: int,
    seed: int,
    prior: str = "standard",
    batch_size: int = 256,
) -> dict:
    """O = G(z_B, e), `samples` draws of e for each of `images` images B.

    e ~ N(0, I) (prior "standard", the paper's), or from the Gaussian fitted to the
    training images' e that the model carries ("fitted"), with the same noise.
    identity kept: share of O read as B's digit; spread: standard deviation of
    the judged style across one image's samples, averaged over images (the
    data's own spread of each factor is given beside it for scale); mean: the
    judged style over all samples, against the data's.
    """
    rng = np.random.default_rng(seed)
    chosen = chosen_images(data, images, rng)  # then the same generator draws the noise
    z = np.repeat(latents.z[chosen], samples, axis=0)  # (images·samples, z_dim), image-major
    e = rng.standard_normal((len(z), latents.e.shape[1])).astype(np.float32)
    if prior == "fitted":
        with torch.no_grad():
            e = model.prior_e(torch.from_numpy(e).to(model.device)).float().cpu().numpy()
    factors, digits = _decode_and_read(model, judge, z, e, batch_size=batch_size)
    spread = factors.reshape(len(chosen), samples, -1).std(axis=1).mean(axis=0)
    return {
        "prior": prior,
        "images": int(len(chosen)),
        "samples_per_image": int(samples),
        "identity_kept": float((digits == np.repeat(data.labels[chosen], samples)).mean()),
        "style_spread": _per_factor(spread),
        "style_spread_average": float(spread.mean()),
        "data_spread": _per_factor(data.factors.std(axis=0)),
        "data_spread_average": float(data.factors.std(axis=0).mean()),
        "style_mean": _per_factor(factors.mean(axis=0)),
        "data_mean": _per_factor(data.factors.mean(axis=0)),
    }


def reference_fidelity(
    model: RbVAE,
    judge: Judge,
    data: DigitSet,
    latents: Latents,
    *,
    images: int,
    seed: int,
    batch_size: int = 256,
) -> dict:
    """O = G(z_x, e_r): judged style MAE against the reference style (1/3, 1/3, 1/3, 1, 0.1)."""
    chosen = chosen_images(data, images, np.random.default_rng(seed))
    e_ref = model.e_ref.detach().float().cpu().numpy()
    e = np.tile(e_ref, (len(chosen), 1)).astype(np.float32)
    return _redrawn(model, judge, latents.z[chosen], e, REFERENCE_FACTORS, data.labels[chosen], batch_size=batch_size)


def reconstruction_fidelity(
    model: RbVAE,
    judge: Judge,
    data: DigitSet,
    latents: Latents,
    *,
    images: int,
    seed: int,
    batch_size: int = 256,
) -> dict:
    """O = G(z_x, e_x), the image itself: judged style MAE against its own factors, digit kept.

    The ceiling of the edits: G(z_B, e_A) keeps B's digit no better than G
    draws B back at all. The images are reference_fidelity's for the same seed.
    Beside it, how often the judge reads the same real images right, overall
    and by quarter of their scale and width (where the redraw loses digits).
    """
    chosen = chosen_images(data, images, np.random.default_rng(seed))
    factors, digits = _decode_and_read(model, judge, latents.z[chosen], latents.e[chosen], batch_size=batch_size)
    labels = data.labels[chosen]
    real = read_images(judge, data.images[chosen], batch_size=batch_size).digits
    redrawn_right, real_right = digits == labels, real == labels
    return {
        **_judged(factors, digits, data.factors[chosen], labels),
        "real_identity_kept": float(real_right.mean()),
        "by_quarter": {
            name: by_quarter(data.factors[chosen, FACTOR_NAMES.index(name)], redrawn=redrawn_right, real=real_right)
            for name in ("scale", "width")
        },
    }


def by_quarter(values: np.ndarray, **right: np.ndarray) -> dict:
    """Each boolean array of `right` averaged over the quarters of `values`, lowest first.

    The quarters are cut at the quartiles, a value on a cut going up; width takes
    ten values, so its quarters hold unequal numbers of images ("images").
    """
    cuts = np.quantile(values, [0.25, 0.5, 0.75])
    quarter = np.digitize(values, cuts)
    counts = np.bincount(quarter, minlength=4)
    shares = {name: [float(hits[quarter == q].mean()) if counts[q] else None for q in range(4)]
              for name, hits in right.items()}
    return {"cuts": [float(c) for c in cuts], "images": [int(c) for c in counts], **shares}


def chosen_images(data: DigitSet, images: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of `images` distinct images of data (all of them if it has fewer), drawn by rng."""
    return rng.choice(len(data), size=min(images, len(data)), replace=False)


def _redrawn(model, judge, z, e, style: np.ndarray, labels: np.ndarray, *, batch_size: int) -> dict:
    """G(z, e): judged style MAE against `style`, and the share read as `labels` (one row per image)."""
    factors, digits = _decode_and_read(model, judge, z, e, batch_size=batch_size)
    return _judged(factors, digits, style, labels)


def _judged(factors: np.ndarray, digits: np.ndarray, style: np.ndarray, labels: np.ndarray) -> dict:
    """The judge's readings of N drawings: style MAE against `style`, and the share read as `labels`."""
    mae = np.abs(factors - style).mean(axis=0)
    return {
        "images": int(len(digits)),
        "style_mae": _per_factor(mae),
        "style_mae_average": float(mae.mean()),
        "identity_kept": float((digits == labels).mean()),
    }

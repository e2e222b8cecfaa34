"""sRb-VAE (§4.3, Alg. 1): the symmetric KL minimised adversarially, plus Eq. 10.

One batch gives one `Pass`: the encoder pairs (x, z, e), (x_r, z_r) and the
generator pairs (x̂, ẑ, ê), (x̂_r, ẑ_r), all at the current parameters. The
model phase minimises Eq. 8 (+ Eq. 10) with the discriminators frozen; the
discriminator phase maximises Eq. 9 on the same, detached, pairs. Both
gradients are taken before either update, as in Alg. 1 (lines 19-20).

rbedit extensions (off when their weights are 0, which is the paper):
- cycles (`swap_weight`): G(z of a reference, e of an unlabelled image)
  re-encodes to that z and that e; with neutralised pairs on, G(z, e_r)
  re-encodes to its z too.
- transfer cycle (`transfer_weight`): G(z of one unlabelled image, e of
  another), the edit users make, re-encodes to that z and that e. A
  generator that draws part of the shape from e (e can carry it: nothing
  else forbids it) then changes z, which this penalises.
- reference e (`reference_e_weight`): E of a reference image is e_r. The
  paper never applies E to the reference set (its e is e_r by definition),
  so E meets a plain digit or a neutral face only at editing time, as an
  input unlike any it was trained on, and a transfer from it took a style
  the source does not have.
- z cycles without G (`z_cycles_train_g` false): the cycles' z terms above
  (G(z, e') re-encodes to z) train Z alone, not G. Through G, a cycle asks G
  to keep what z holds, style included, whatever e says: in the shipped
  model a transfer's judged scale followed B (0.52 · B's + 0.36 · A's).
  Without G, it asks Z to read z back from whatever style e drew. The e
  terms of the cycles still train G. On the previous digits preset a
  transfer's scale then followed A (0.63 · A's + 0.32 · B's). With no z
  term through G, though, nothing asks G to draw z's digit when e says
  otherwise, and one seed of the digits preset let e take the digit.
  `z_cycles_train_g` may name the cycles whose z terms still train G
  (swap, neutral, transfer): the digits preset names the swap cycle, whose
  z comes from a reference and so carries no style to keep (README, Results).
- reconstruction noise (`recon_noise`; 1 is the paper): the Eq. 10
  reconstructions decode mu + recon_noise · (sample − mu); at 0, posterior
  means. The encoder pairs the discriminators see keep their samples. The
  adversarial terms squeeze the posterior means to the prior's spread but
  not the posterior noise: on digits z's noise was a sixth of its spread (a
  VAE's a fortieth), and G drew blurred codes. At 0, G redrew more digits
  but e and z separated style less (docs/digits.md). `recon_noise_e` sets
  e's alone: at 0, G reads e's means but z's samples. Along the direction
  that predicts scale, e's posterior noise was larger than the spread of
  its means (signal-to-noise 0.6, against 6.7 in z), so G might have drawn
  size from z for want of a reliable e. At 0 e's noise grew instead, and
  transfers followed B's size more (docs/digits.md): no preset uses it.
- capped e noise (`e_max_logvar`): E's posterior log-variance is clamped
  from above wherever training reads it (the samples, the reconstructions,
  the cycles' e likelihoods). In the digits preset's seed 0, e's posterior
  noise along the direction that predicts scale was larger than the spread
  of its means; G could read size reliably only from z, and the cycles' e
  terms, divided by that variance, cost a wrong size little. The clamp
  passes no gradient above the cap, so E's log-variance head drifts there
  (sd about 1.1 in a release trained with the cap): the editor reads only
  posterior means, but a released E's variance is not its training noise.
- floored cycle noise (`cycle_min_logvar`): the swap, neutral and transfer
  cycles score their latents under the re-encoded posterior with its
  log-variance floored here rather than at min_logvar. Under a confident
  posterior (log-variance near −8) a code read back wrong costs e^8 times
  its squared error, and in the digits preset's float32 seed 0 six of seven
  loss spikes came one step after such a jump in a cycle's term
  (docs/digits.md); with the floor at −4 that seed had none. The paper's
  Eq. 10 terms keep min_logvar.
- zoomed z (`zoom_weight`, digits only): Z must read the same z from the
  image zoomed out about its centre (by ZOOM_RANGE, the protocol's own size
  change), so z holds no size and G can take size only from e. In the
  digits preset z read scale about as well as e did (probe MAE .056 against
  .050), and transfers followed B's size.
- zoomed reconstructions (`zoom_recon_weight`, digits only): G(z of an
  image, e of the same image zoomed out) must draw the zoomed image, a
  transfer whose answer is known: z holds the full-size digit, so the
  smaller size has to come from e, and G has to take it from there.
  `thicken_recon_weight` does the same for stroke width, with the image's
  strokes widened as the protocol's dilation widens them.
  Through E they let e carry the digit's shape too (in one digits seed of
  three, transfers then drew A's digit as often as B's).
  `restyle_trains_encoders` false lets them train G alone; on that seed G
  then took the digit from e outright (docs/digits.md).
- symmetric e (`e_symmetry_weight`, digits only): E must read the same e
  from the image turned by a quarter, half or three-quarter turn or
  mirrored (one of the seven non-trivial symmetries of the square, drawn
  per image). The protocol's colour, centred size and square dilation do
  not change under these, but the digit does (a 6 turned is a 9, a 7 is
  no digit at all), so an e that obeys this can tell apart only shapes
  that look alike in every orientation. Z and G are not involved.
- feature weights (`feature_weight`, faces only): the reconstructions'
  pixel errors count 1 + k times where the template has brows, eyes and
  lips (train.objectives.feature_weights). A brow raise or an eye
  opening moves a few pixels of a 32×32 crop, too few for the L1 over the
  whole face to make G draw them, and what G does not draw e need not carry.
  `outline_weight` adds the same on the jaw outline, where face width and
  length are drawn, and `iris_weight` a narrower bump on each eye's
  centre, where eye colour is drawn.
- ink weights (`ink_weight`, digits only): the same, 1 + k where the image
  or its reconstruction has ink (train.objectives.ink_weights), so that G
  draws the strokes of small digits, not just a blob of their colour. At 10
  it raised G's redraw but not the transfer, and style separated less
  (docs/digits.md): no preset uses it.
- decorrelation (`decorrelation_weight`, `decorrelation_trains`): the
  squared correlations between the posterior means of z and of e over the
  unlabelled batch. The prior makes z and e independent, which the
  adversarial terms ask of q only through d_xi; trained models share factors
  between the codes (face length and eye spacing; a digit's shape), and an
  edit then takes A's share. `decorrelation_trains` names the encoder that
  learns from it (e, z or both). On both data sets the shared factors went
  to the wrong code (expression into z; style into z, or the digit into e):
  no preset uses it (README).
- neutralised pairs (`neutral_weight`): an unlabelled image's z decoded with
  e_r, (G(z, e_r), z), must pass d_nu as a reference pair (x_r, z_r). The
  paper's objective lets Z keep style that the reference set holds constant
  (scale, stroke width) as long as z's marginal matches the prior; then
  G(z, e_r) shows that style, d_nu sees it, and the only way left to
  reconstruct x is to carry the style in e.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rbedit.model import Posterior, RbVAE
from train.config import CYCLES
from train.objectives import (
    PixelWeight,
    adversarial_model_loss,
    clamp,
    cross_correlation,
    discriminator_loss,
    gaussian_nll,
    laplace_nll,
)


ZOOM_RANGE = (0.75, 1.0)  # zoomed z: how far a digit is shrunk (its protocol size is 0.5-1)


@dataclass
class Pass:
    x: torch.Tensor  # (B, 3, S, S) unlabelled images
    z: torch.Tensor  # (B, z_dim) ~ q(z|x)
    e: torch.Tensor  # (B, e_dim) ~ q(e|x)
    x_r: torch.Tensor  # (B, 3, S, S) reference images
    z_r: torch.Tensor  # (B, z_dim) ~ q(z|x_r)
    x_hat: torch.Tensor  # G(ẑ, ê)
    z_hat: torch.Tensor  # ~ p(z)
    e_hat: torch.Tensor  # ~ p(e)
    x_hat_r: torch.Tensor  # G(ẑ_r, e_r)
    z_hat_r: torch.Tensor  # ~ p(z)
    x_n: torch.Tensor | None = None  # G(z, e_r): the unlabelled images neutralised


def model_terms(
    model: RbVAE, x: torch.Tensor, x_r: torch.Tensor, cfg, noise: torch.Generator, pixel_weight: PixelWeight | None = None
) -> tuple[Pass, dict]:
    """Forward everything the model phase needs; returns the pass and its unweighted loss terms.

    pixel_weight: weighs the reconstructions' pixel errors (feature_weights, ink_weights), or None.
    """
    b = len(x)
    # Encoder pairs (Alg. 1 lines 2-6); one Z pass over both sets.
    qz_all = clamp(model.encode_z(torch.cat([x, x_r])), cfg.min_logvar)
    qe = _clamp_e(model.encode_e(x), cfg)
    z_all = qz_all.sample(noise)
    z, z_r = z_all[:b], z_all[b:]
    e = qe.sample(noise)
    e_r = model.reference_e(b)
    # The codes the reconstructions decode: the samples, or nearer the means (recon_noise < 1).
    z_rec_all = _with_noise(qz_all, z_all, cfg.recon_noise)
    e_noise = cfg.recon_noise if cfg.recon_noise_e is None else cfg.recon_noise_e
    z_rec, z_rec_r, e_rec = z_rec_all[:b], z_rec_all[b:], _with_noise(qe, e, e_noise)

    # Prior draws (lines 9-11).
    def prior(dim: int) -> torch.Tensor:
        return torch.randn(b, dim, generator=noise, device=x.device)

    z_hat, e_hat, z_hat_r = prior(cfg.z_dim), prior(cfg.e_dim), prior(cfg.z_dim)

    # One generator pass: reconstructions, generated pairs (lines 12-13) and the extensions.
    pairs = {"recon": (z_rec, e_rec), "recon_r": (z_rec_r, e_r), "x_hat": (z_hat, e_hat), "x_hat_r": (z_hat_r, e_r),
             "swap": (z_r, e), "neutral": (z, e_r), "transfer": (z.roll(1, 0), e)}
    names = ["recon", "recon_r", "x_hat", "x_hat_r", *extensions(cfg)]
    zs, es = zip(*(pairs[name] for name in names))
    images = dict(zip(names, model.decode(torch.cat(zs), torch.cat(es)).split(b)))
    recon, recon_r, x_hat, x_hat_r = images["recon"], images["recon_r"], images["x_hat"], images["x_hat_r"]

    terms = {
        # Eq. 10, images: log p(x|z,e) and log p(x_r|z_r,e_r).
        "recon": laplace_nll(x, recon, cfg.laplace_scale, pixel_weight),
        "recon_ref": laplace_nll(x_r, recon_r, cfg.laplace_scale, pixel_weight),
    }
    # Eq. 10, latents re-encoded from generated images (and from the extensions' images).
    cycles = extensions(cfg)
    z_from = ["x_hat", "x_hat_r", *cycles]
    e_from = ["x_hat", *(name for name in ("swap", "transfer") if name in cycles)]
    # Cycles not named in z_cycles_train_g reach Z detached: only Z learns to read their z back.
    z_inputs = [images[k].detach() if k in cycles and k not in cfg.z_cycles_train_g else images[k] for k in z_from]
    re_z = _split(clamp(model.encode_z(torch.cat(z_inputs)), cfg.min_logvar), z_from)
    re_e = _split(_clamp_e(model.encode_e(torch.cat([images[k] for k in e_from])), cfg), e_from)
    # The cycles' codes are scored under a log-variance floored at cycle_min_logvar, where that is set.
    re_z, re_e = ({k: _cycle(post, cfg) if k in cycles else post for k, post in re.items()} for re in (re_z, re_e))
    terms["latent"] = (
        gaussian_nll(z_hat, re_z["x_hat"]) + gaussian_nll(e_hat, re_e["x_hat"]) + gaussian_nll(z_hat_r, re_z["x_hat_r"])
    )
    if cfg.swap_weight:
        # A reference digit's z with an unlabelled image's e must re-encode to both.
        # z_r carries no style (all references share one), so this asks Z to ignore
        # the style that e put into the image.
        terms["swap"] = gaussian_nll(z_r.detach(), re_z["swap"]) + gaussian_nll(e.detach(), re_e["swap"])
    if cfg.neutral_weight:
        # The neutralised image keeps the common factors: it re-encodes to the z it came from.
        terms["neutral_cycle"] = gaussian_nll(z.detach(), re_z["neutral"])
    if cfg.reference_e_weight:
        # −log q(e_r | x_r): E reads the reference style as e_r (e_r learns from this too).
        terms["reference_e"] = gaussian_nll(model.reference_e(len(x_r)), _clamp_e(model.encode_e(x_r), cfg))
    if cfg.decorrelation_weight:
        # Only the side named learns from it; "both" lets either code give the shared factor up.
        side = cfg.decorrelation_trains
        z_mu = qz_all.mu[:b] if side in ("z", "both") else qz_all.mu[:b].detach()
        e_mu = qe.mu if side in ("e", "both") else qe.mu.detach()
        terms["decorrelation"] = cross_correlation(z_mu, e_mu)
    if cfg.transfer_weight:
        # B's z with A's e (A = the next image of the batch) keeps B's z and takes A's e.
        terms["transfer"] = (
            gaussian_nll(z.roll(1, 0).detach(), re_z["transfer"]) + gaussian_nll(e.detach(), re_e["transfer"])
        )
    if cfg.zoom_weight or cfg.zoom_recon_weight:
        small = zoom_out(x, torch.empty(b, device=x.device).uniform_(*ZOOM_RANGE, generator=noise))
    if cfg.zoom_weight:
        # −log q(z | zoomed x): the digit drawn smaller keeps its z (Z alone learns; G is not involved).
        terms["zoom"] = gaussian_nll(z.detach(), clamp(model.encode_z(small), cfg.min_logvar))
    if cfg.e_symmetry_weight:
        # −log q(e | x turned or mirrored): the style survives the symmetry, the digit does not (E alone learns).
        terms["e_symmetry"] = gaussian_nll(e.detach(), _clamp_e(model.encode_e(square_symmetry(x, noise)), cfg))
    # Transfers whose answer is known: z of x with e of x restyled draws x restyled.
    restyled = {}
    if cfg.zoom_recon_weight:
        restyled["zoom_recon"] = small  # z holds the full-size digit, so the smaller size can come only from e
    if cfg.thicken_recon_weight:
        restyled["thicken_recon"] = thicken(x)
    for name, target in restyled.items():
        qe_target = _clamp_e(model.encode_e(target), cfg)
        z_in, e_in = z_rec, _with_noise(qe_target, qe_target.sample(noise), e_noise)
        if not cfg.restyle_trains_encoders:  # G alone learns to draw what e says
            z_in, e_in = z_in.detach(), e_in.detach()
        terms[name] = laplace_nll(target, model.decode(z_in, e_in), cfg.laplace_scale, pixel_weight)
    pass_ = Pass(x, z, e, x_r, z_r, x_hat, z_hat, e_hat, x_hat_r, z_hat_r, images.get("neutral"))
    return pass_, terms


def zoom_out(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Each (3, S, S) image of x (in [-1, 1]) shrunk by its `factor` (≤ 1) about the centre, black around it."""
    theta = torch.zeros(len(x), 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0 / factor.to(x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1.0, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1.0


def square_symmetry(x: torch.Tensor, noise: torch.Generator) -> torch.Tensor:
    """Each (3, S, S) image of x turned and/or mirrored: one of the seven symmetries of the square but the identity."""
    variants = [torch.rot90(flipped, turns, dims=(-2, -1)) for flipped in (x, x.flip(-1)) for turns in range(4)]
    pick = torch.randint(1, len(variants), (len(x),), generator=noise, device=x.device)
    return torch.stack(variants)[pick, torch.arange(len(x), device=x.device)]


def thicken(x: torch.Tensor) -> torch.Tensor:
    """Each (3, S, S) image of x (in [-1, 1], ink brighter than the black ground) with its strokes one pixel wider.

    A 3×3 maximum at twice the image's size widens each stroke by half a pixel on either side, so it stays
    centred. The protocol's width is a k×k dilation at 64×64 (k = 1..10): at the 32×32 model this is k → k + 2.
    """
    big = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
    return F.avg_pool2d(F.max_pool2d(big, 3, stride=1, padding=1), 2)


def _clamp_e(post: Posterior, cfg) -> Posterior:
    """E's posterior clamped, its log-variance capped at e_max_logvar where that is set."""
    return clamp(post, cfg.min_logvar, cfg.e_max_logvar)


def _cycle(post: Posterior, cfg) -> Posterior:
    """A cycle's re-encoded posterior, its log-variance floored at cycle_min_logvar where that is set."""
    return post if cfg.cycle_min_logvar is None else clamp(post, cfg.cycle_min_logvar)


def _with_noise(post: Posterior, sample: torch.Tensor, scale: float) -> torch.Tensor:
    """The posterior mean plus `scale` times the sample's noise (the sample itself at 1)."""
    return sample if scale == 1 else post.mu + scale * (sample - post.mu)


def extensions(cfg) -> list[str]:
    """Names of the extra decoded batches the rbedit extensions ask for, in decoding order."""
    weights = (cfg.swap_weight, cfg.neutral_weight, cfg.transfer_weight)
    return [name for name, weight in zip(CYCLES, weights) if weight]


def _split(post: Posterior, names: list[str]) -> dict[str, Posterior]:
    """A posterior over several concatenated equal batches, one per name."""
    parts = zip(post.mu.chunk(len(names)), post.logvar.chunk(len(names)))
    return {name: Posterior(mu, logvar) for name, (mu, logvar) in zip(names, parts)}


def adversarial_terms(p: Pass, discs: dict) -> dict:
    """Eq. 8: what the encoders and the generator minimise through the discriminators."""
    d_xi, d_gamma = discs["d_xi"], discs["d_gamma"]
    terms = {
        "adv_xi": adversarial_model_loss(d_xi(p.x, p.z, p.e), d_xi(p.x_hat, p.z_hat, p.e_hat)),
        "adv_gamma": adversarial_model_loss(d_gamma(p.x_r, p.z_r), d_gamma(p.x_hat_r, p.z_hat_r)),
    }
    if "d_nu" in discs:
        # Only the neutralised side moves: reference pairs are the fixed target here.
        terms["neutral"] = -discs["d_nu"](p.x_n, p.z).mean()
    return terms


def discriminator_terms(p: Pass, discs: dict) -> dict:
    """Eq. 9 for each discriminator on the detached pairs of the same pass (encoder pairs labelled 1)."""
    det = {k: v.detach() for k, v in vars(p).items() if v is not None}
    d_xi, d_gamma = discs["d_xi"], discs["d_gamma"]
    terms = {
        "d_xi": discriminator_loss(
            d_xi(det["x"], det["z"], det["e"]), d_xi(det["x_hat"], det["z_hat"], det["e_hat"])
        ),
        "d_gamma": discriminator_loss(
            d_gamma(det["x_r"], det["z_r"]), d_gamma(det["x_hat_r"], det["z_hat_r"])
        ),
    }
    if "d_nu" in discs:
        terms["d_nu"] = discriminator_loss(discs["d_nu"](det["x_r"], det["z_r"]), discs["d_nu"](det["x_n"], det["z"]))
    return terms


def model_loss(terms: dict, cfg) -> torch.Tensor:
    return (
        terms["recon"]
        + terms["recon_ref"]
        + cfg.latent_weight * terms["latent"]
        + cfg.swap_weight * (terms.get("swap", 0.0) + terms.get("neutral_cycle", 0.0))
        + cfg.transfer_weight * terms.get("transfer", 0.0)
        + cfg.reference_e_weight * terms.get("reference_e", 0.0)
        + cfg.decorrelation_weight * terms.get("decorrelation", 0.0)
        + cfg.zoom_weight * terms.get("zoom", 0.0)
        + cfg.zoom_recon_weight * terms.get("zoom_recon", 0.0)
        + cfg.thicken_recon_weight * terms.get("thicken_recon", 0.0)
        + cfg.e_symmetry_weight * terms.get("e_symmetry", 0.0)
        + cfg.adversarial_weight * (terms["adv_xi"] + terms["adv_gamma"])
        + cfg.neutral_weight * terms.get("neutral", 0.0)
    )

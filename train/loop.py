"""The training loop: one harness for every objective (DESIGN §7).

Run folder: config.json (resolved), state.pt (resume), metrics.jsonl,
samples/step_XXXXXX.png, release/ (the exported checkpoint).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import signal
import threading
import time
from pathlib import Path

import numpy as np
import torch

from rbedit.devices import cpu_has_bfloat16, resolve_device, reuse_freed_memory
from rbedit.model import ModelConfig, RbVAE
from rbedit.pixels import uint8_to_model
from train import srbvae
from train.config import TrainConfig
from train.discriminators import build_discriminators
from train.objectives import feature_weights, ink_weights, rbvae_loss, vae_loss
from train.samples import sample_grid, save_png
from train.state import STATE_NAME, load_state, save_state

GRID_COLUMNS = 8


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the run stopped with its last good state saved."""


def requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def model_config(cfg: TrainConfig, template: np.ndarray | None = None) -> ModelConfig:
    return ModelConfig(
        domain=cfg.domain,
        image_size=cfg.image_size,
        z_dim=cfg.z_dim,
        e_dim=cfg.e_dim,
        e_pool=cfg.e_pool,
        e_grey=cfg.e_grey,
        z_shape=cfg.z_shape,
        e_inject=cfg.e_inject,
        e_warp=cfg.e_warp,
        channels=cfg.channels,
        level_convs=cfg.level_convs,
        encoder_convs=cfg.encoder_convs,
        template=None if template is None else tuple(map(tuple, np.asarray(template, float).tolist())),
        extra={
            "objective": cfg.objective,
            "preset": cfg.preset,
            "steps": cfg.steps,
            "data": {"seed": cfg.data_seed, "mnist_dir": cfg.mnist_dir, "image_size": cfg.image_size},
        },
    )


def resolve_precision(precision: str, device: torch.device) -> str:
    """cfg.precision made concrete: `auto` is bfloat16 on a CPU with bfloat16 instructions, else float32.

    A CPU without them computes bfloat16 in software (the digits preset stepped 9× slower than in
    float32 on an AVX2 EPYC), and on a GPU float32 was the faster (train/config.py, the digits preset).
    """
    if precision != "auto":
        return precision
    return "bfloat16" if device.type == "cpu" and cpu_has_bfloat16() else "float32"


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """cfg.lr, rising linearly over the first lr_warmup steps and falling linearly from step
    lr_decay_from × steps to 0 at the end (a function of the step alone, so a resumed run
    follows the same schedule)."""
    rate = cfg.lr * min(1.0, (step + 1) / cfg.lr_warmup) if cfg.lr_warmup else cfg.lr
    start = cfg.lr_decay_from * cfg.steps
    if step < start:
        return rate
    return rate * max(0.0, cfg.steps - step) / max(cfg.steps - start, 1)


class Trainer:
    """Holds the networks, optimisers and data of one run; `step()` is one SGD step."""

    def __init__(
        self, cfg: TrainConfig, *, unlabelled: np.ndarray, reference: np.ndarray, template: np.ndarray | None = None
    ) -> None:
        self.device = resolve_device(cfg.device)
        self.cfg = cfg = dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, self.device))
        torch.manual_seed(cfg.seed)
        # channels_last: about a quarter faster for these convolutions on CPU.
        self.model = RbVAE(model_config(cfg, template)).to(self.device, memory_format=torch.channels_last)
        self.modules: dict[str, torch.nn.Module] = {"model": self.model}
        adam = dict(lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
        self.optimizers = {"model": torch.optim.Adam(self.model.parameters(), **adam)}
        # The released weights: the model itself, or (ema_decay > 0) the moving average of its
        # weights over the steps, which the optimiser never sees (Polyak averaging, as for GAN generators).
        self.released = self.model
        if cfg.ema_decay:
            self.released = copy.deepcopy(self.model).requires_grad_(False)
            self.modules["ema"] = self.released
        if cfg.objective == "srbvae":
            self.discs = {
                name: d.to(self.device, memory_format=torch.channels_last)
                for name, d in build_discriminators(cfg).items()
            }
            self.modules |= self.discs
            params = [p for d in self.discs.values() for p in d.parameters()]
            self.optimizers["disc"] = torch.optim.Adam(params, **adam)
        self.unlabelled = uint8_to_model(unlabelled).to(self.device, memory_format=torch.channels_last)  # (N, 3, S, S)
        self.reference = uint8_to_model(reference).to(self.device, memory_format=torch.channels_last)
        # Batches are drawn on the CPU so runs agree across devices; noise on the device.
        self.batches = torch.Generator().manual_seed(cfg.seed + 1)
        self.noise = torch.Generator(device=self.device).manual_seed(cfg.seed + 2)
        self.generators = {"batches": self.batches, "noise": self.noise}
        # Reconstruction errors weighted where faces' brows, eyes, lips (outline, irises) are, or where digits' ink is.
        self.pixel_weight = None
        if cfg.weighs_face_pixels:
            if template is None:
                raise ValueError("feature_weight, outline_weight and iris_weight need the faces' alignment template")
            self.pixel_weight = feature_weights(
                template,
                cfg.image_size,
                cfg.feature_weight,
                outline_weight=cfg.outline_weight,
                iris_weight=cfg.iris_weight,
                device=self.device,
            )
        elif cfg.ink_weight:
            self.pixel_weight = ink_weights(cfg.ink_weight)
        self.step_count = 0

    # --- one step -------------------------------------------------------------
    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.cfg.batch_size
        iu = torch.randint(len(self.unlabelled), (b,), generator=self.batches)
        ir = torch.randint(len(self.reference), (b,), generator=self.batches)
        return self.unlabelled[iu.to(self.device)], self.reference[ir.to(self.device)]

    def step(self) -> dict[str, float]:
        """One SGD step of the configured objective; returns its loss terms."""
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = learning_rate(self.cfg, self.step_count)
        x, x_r = self._batch()
        for m in self.modules.values():
            m.train()
        if self.cfg.objective == "srbvae":
            logs = self._srbvae_step(x, x_r)
        else:
            logs = self._likelihood_step(x, x_r)
        if self.cfg.ema_decay:
            self._average()
        self.step_count += 1
        return logs

    @torch.no_grad()
    def _average(self) -> None:
        """ema ← decay · ema + (1 − decay) · model, parameter by parameter."""
        for average, current in zip(self.released.parameters(), self.model.parameters()):
            average.lerp_(current, 1.0 - self.cfg.ema_decay)

    def _forward(self):
        """The context of every forward pass: bfloat16 autocast when cfg.precision asks for it.

        Backward passes run outside it (autocast records each op's dtype), and the weights, their
        gradients and Adam's moments stay float32.
        """
        enabled = self.cfg.precision == "bfloat16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def _likelihood_step(self, x: torch.Tensor, x_r: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        with self._forward():
            if cfg.objective == "rbvae":
                terms = rbvae_loss(
                    self.model, x, x_r, scale=cfg.laplace_scale, min_logvar=cfg.min_logvar, weight=self.pixel_weight
                )
            else:  # vae / betavae: every image unlabelled, all latents one code
                beta = cfg.beta if cfg.objective == "betavae" else 1.0
                both = torch.cat([x, x_r])
                terms = vae_loss(
                    self.model, both, scale=cfg.laplace_scale, beta=beta, min_logvar=cfg.min_logvar,
                    weight=self.pixel_weight,
                )
        self._check_finite(terms)
        opt = self.optimizers["model"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        norms = self._clip_gradients()
        opt.step()
        return {k: float(v.detach()) for k, v in terms.items()} | norms

    def _srbvae_step(self, x: torch.Tensor, x_r: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        discs = self.discs
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        # Model phase (Alg. 1 lines 1-14): encoders and generator minimise Eq. 8 + Eq. 10.
        requires_grad(self.model, True)
        for d in discs.values():
            requires_grad(d, False)
        with self._forward():
            p, terms = srbvae.model_terms(self.model, x, x_r, cfg, self.noise, self.pixel_weight)
            terms |= srbvae.adversarial_terms(p, discs)
            terms["loss"] = srbvae.model_loss(terms, cfg)
        self._check_finite(terms)
        terms["loss"].backward()
        # Discriminator phase (lines 15-18): logistic regression of Eq. 9 on the same pairs.
        requires_grad(self.model, False)
        for d in discs.values():
            requires_grad(d, True)
        with self._forward():
            d_terms = srbvae.discriminator_terms(p, discs)
        self._check_finite(d_terms)
        sum(d_terms.values()).backward()
        requires_grad(self.model, True)
        # Update (lines 19-20): both gradients were taken at the same parameters.
        norms = self._clip_gradients()
        for opt in self.optimizers.values():
            opt.step()
        return {k: float(v.detach()) for k, v in (terms | d_terms).items()} | norms

    def _clip_gradients(self) -> dict[str, float]:
        """Each optimiser's gradient norm (grad_model, grad_disc), taken before clipping; with
        cfg.clip_grad_norm set, gradients above it are scaled down to it (off: scaled by exactly 1)."""
        max_norm = self.cfg.clip_grad_norm or math.inf
        return {
            f"grad_{name}": float(torch.nn.utils.clip_grad_norm_(
                [p for group in opt.param_groups for p in group["params"]], max_norm
            ))
            for name, opt in self.optimizers.items()
        }

    def _check_finite(self, terms: dict) -> None:
        bad = [k for k, v in terms.items() if not math.isfinite(float(v.detach()))]
        if bad:
            raise TrainingDiverged(
                f"step {self.step_count + 1}: {', '.join(bad)} became non-finite; "
                "try a lower --lr (the last good state is kept)"
            )

    # --- state ----------------------------------------------------------------
    def save(self, run_dir: Path) -> None:
        save_state(run_dir, step=self.step_count, modules=self.modules, optimizers=self.optimizers,
                   generators=self.generators)

    def load(self, run_dir: Path) -> None:
        self.step_count = load_state(run_dir, modules=self.modules, optimizers=self.optimizers,
                                     generators=self.generators)


@contextlib.contextmanager
def deferred_interrupt():
    """Hold SIGINT until the block ends, then raise KeyboardInterrupt (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda *_: received.append(True))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def _grid_inputs(trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed images for the sample grids: unlabelled images as sources, references as targets.

    Both are taken evenly across their set: the bundled digits are sorted by class, so the
    first references would all be zeros.
    """
    n = GRID_COLUMNS

    def spread(images: torch.Tensor) -> torch.Tensor:
        return images[:: max(1, len(images) // n)][:n]

    return spread(trainer.unlabelled), spread(trainer.reference)


def train(cfg: TrainConfig, *, resume: bool = False, progress: bool = True) -> Path:
    """Train `cfg` in cfg.run_dir (continuing its state.pt when `resume`); export release/."""
    from train.data.sets import training_sets
    from train.e_prior import some_images, with_fitted_prior
    from train.export import export_release

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # Arithmetic on subnormal floats is many times slower on a CPU. A few thousand steps in, they
    # appear in the faces model, and a step took 1.7× as long (README, "Training speed").
    torch.set_flush_denormal(True)
    # Freed activations are reused, not paged in afresh each step: about 5 % faster on an AVX2 CPU
    # (docs/benchmarks.md, "Training speed").
    reuse_freed_memory()
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume and not (run_dir / STATE_NAME).exists():
        raise FileNotFoundError(f"{run_dir}: no {STATE_NAME} to resume from")
    if not resume and (run_dir / STATE_NAME).exists():
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose --run-dir")

    data = training_sets(cfg)
    trainer = Trainer(cfg, unlabelled=data.unlabelled, reference=data.reference, template=data.template)
    # The trainer's config has the precision resolved: the run folder records what was used,
    # so a resumed run keeps it on any machine.
    cfg = trainer.cfg
    (run_dir / "config.json").write_text(cfg.to_json())
    if resume:
        trainer.load(run_dir)
    (run_dir / "samples").mkdir(exist_ok=True)
    sources, targets = _grid_inputs(trainer)

    from train.progress import TrainingProgress

    started = time.perf_counter()
    first_step = trainer.step_count
    with TrainingProgress(total=cfg.steps, completed=first_step, enabled=progress) as bar, open(
        run_dir / "metrics.jsonl", "a"
    ) as metrics:
        try:
            while trainer.step_count < cfg.steps:
                with deferred_interrupt():  # Ctrl-C lands between steps, so the saved state is consistent
                    logs = trainer.step()
                step = trainer.step_count
                bar.update(step, logs)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    elapsed = time.perf_counter() - started
                    rate = (step - first_step) / max(elapsed, 1e-9)
                    metrics.write(json.dumps({"step": step, "seconds": round(elapsed, 2),
                                              "steps_per_s": round(rate, 3), **logs}) + "\n")
                    metrics.flush()
                if step % cfg.sample_every == 0 or step == cfg.steps:
                    grid = sample_grid(trainer.released, sources, targets)
                    save_png(grid, run_dir / "samples" / f"step_{step:06d}.png")
                if step % cfg.save_every == 0 or step == cfg.steps:
                    trainer.save(run_dir)
        except KeyboardInterrupt:
            trainer.save(run_dir)
            raise
        except TrainingDiverged:
            trainer.save(run_dir)  # parameters were not updated by the failing step
            raise
    export_release(with_fitted_prior(trainer.released, some_images(data.unlabelled)), cfg, run_dir)
    return run_dir

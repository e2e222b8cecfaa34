"""python -m train.evaluate RUN_OR_CHECKPOINT [...] [--json out.json] [--compare --steps N]

Measures digits models on held-out source digits (DESIGN §3):
- the feature-learning probe of the paper's Table 1 (ridge on posterior means,
  fitted on the probe-fit fold, MAE on the probe-eval fold);
- transfer fidelity, sampling and reference decoding, read by a judge CNN
  trained on real styled digits of the probe-fit fold;
- the DESIGN §3 targets, PASS/FAIL per line.
Only the probe_fit / probe_eval source digits of the model's own data seed are
used, so no digit the model trained on is ever evaluated. `--compare` first
trains srbvae, rbvae, vae and betavae with the same harness and budget.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from train.data.digits import FACTOR_NAMES, DigitSet, load_source_digits, make_reference, make_unlabelled, split_sources
from train.evaluated_models import RELEASE_DIR, evaluate_checkpoints, locate_checkpoint
from train.evaluation_cli import (
    DEFAULT_CACHE,
    add_cache_and_device_options,
    evaluation_parser,
    judge_override,
    run_evaluation_command,
)

EVALUATE_VERSION = 1
OBJECTIVES = ("srbvae", "rbvae", "vae", "betavae")
REFERENCE_BASED = ("srbvae", "rbvae")

# Fixed sub-seeds of the data seed, one per random choice the evaluation makes.
_STREAMS = {
    "probe_fit": 1, "probe_eval": 2, "pairs": 3, "sampling": 4, "reference": 5,
    "probe_fit_sources": 6, "probe_eval_sources": 7,
}


def stream_seed(data_seed: int, stream: str) -> int:
    """A seed for one of the evaluation's random choices, derived from the model's data seed."""
    return int(np.random.SeedSequence([data_seed, _STREAMS[stream]]).generate_state(1)[0])


@dataclass
class EvalBudget:
    """How much held-out data the evaluation uses (tests shrink everything)."""

    probe_images: int = 5000  # styled images per probe fold (paper: 5k each)
    pairs: int = 1000  # transfer pairs (A, B) from the probe-eval fold
    sample_images: int = 200  # images B for sampling G(z_B, e ~ N(0, I))
    samples_per_image: int = 8  # draws of e per image B
    reference_images: int = 1000  # images decoded with e_r
    max_sources: int | None = None  # cap the source digits of each probe fold (tests)
    refine: int = 0  # the edits use latents refined by this many steps (RbVAE.refine); the probe, the means
    batch_size: int = 256
    judge: dict = field(default_factory=dict)  # JudgeConfig overrides (tests: a tiny judge)


@dataclass(frozen=True)
class DataKey:
    """What fixes the held-out digits: the model's data seed, source digits and resolution."""

    seed: int
    mnist_dir: str | None
    image_size: int


@dataclass
class ModelEntry:
    """One model to evaluate, with the provenance read from its checkpoint."""

    name: str  # as given on the command line
    folder: Path  # the release checkpoint folder
    objective: str
    data: DataKey
    run_dir: Path | None  # the run folder, when a run was given
    steps: int | None


@dataclass
class EvalData:
    """Held-out data and the judge for one DataKey."""

    key: DataKey
    probe_fit: DigitSet
    probe_eval: DigitSet
    judge: object  # train.judge.Judge
    judge_info: dict
    judge_real: dict  # the judge's own scores on real held-out digits


def resolve_entry(
    name: str,
    *,
    objective: str | None = None,
    data_seed: int | None = None,
    mnist_dir: str | None = None,
) -> ModelEntry:
    """A run folder (with release/), a checkpoint folder, an embedded name or a Hub id → ModelEntry.

    `objective`, `data_seed` and `mnist_dir` are used only where the checkpoint
    does not record them (ModelConfig.extra).
    """
    from rbedit.checkpoint import load_config

    folder, run_dir = locate_checkpoint(name)
    config = load_config(folder)
    if config.domain != "digits":
        raise ValueError(f"{name}: train.evaluate measures digits models; this one is {config.domain!r}")
    extra = config.extra or {}
    data = extra.get("data") or {}
    objective = extra.get("objective", objective)
    if objective not in OBJECTIVES:
        raise ValueError(
            f"{name}: checkpoint does not record its objective (config.json extra.objective); "
            f"pass --objective {{{','.join(OBJECTIVES)}}}"
        )
    seed = data.get("seed", data_seed)
    if seed is None:
        raise ValueError(
            f"{name}: checkpoint does not record its data seed (config.json extra.data.seed), so its "
            "held-out digits are unknown; pass --data-seed"
        )
    key = DataKey(int(seed), data.get("mnist_dir", mnist_dir), int(config.image_size))
    return ModelEntry(name, folder, objective, key, run_dir, extra.get("steps"))


def _probe_sources(sources: np.ndarray, budget: EvalBudget, seed: int) -> tuple[np.ndarray, int]:
    """Which source digits a probe fold styles, and how many copies of each."""
    rng = np.random.default_rng(seed)
    cap = min(len(sources), budget.probe_images, budget.max_sources or len(sources))
    # A random (not leading) subset: the bundled digits are sorted by class.
    chosen = np.sort(rng.choice(sources, size=cap, replace=False)) if cap < len(sources) else sources
    return chosen, max(1, round(budget.probe_images / len(chosen)))


@functools.lru_cache(maxsize=2)
def _source_digits(mnist_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Source digits, read once per process (several models usually share them)."""
    return load_source_digits(mnist_dir)


def prepare_data(
    key: DataKey,
    budget: EvalBudget,
    *,
    cache_dir: str | Path | None,
    device="cpu",
    log: Callable[[str], None] = lambda m: None,
) -> EvalData:
    """Style the probe folds of `key` and load (or train) its judge."""
    from train.judge import JudgeConfig, load_or_train_judge, score_real

    digits, labels = _source_digits(key.mnist_dir)
    splits = split_sources(labels, seed=key.seed)
    folds = {}
    for fold in ("probe_fit", "probe_eval"):
        sources, copies = _probe_sources(getattr(splits, fold), budget, stream_seed(key.seed, f"{fold}_sources"))
        folds[fold] = make_unlabelled(
            digits, labels, sources, key.image_size, copies=copies, seed=stream_seed(key.seed, fold)
        )
    log(f"probe folds: {len(folds['probe_fit'])} + {len(folds['probe_eval'])} images at {key.image_size}×{key.image_size}")
    judge_config = JudgeConfig(image_size=key.image_size, data_seed=key.seed, mnist_dir=key.mnist_dir, **budget.judge)
    judge_cache = Path(cache_dir) / "judges" if cache_dir is not None else None
    judge, info = load_or_train_judge(
        judge_config, digits, labels, splits.probe_fit, cache_dir=judge_cache, device=device, log=log
    )
    eval_sources = np.unique(folds["probe_eval"].sources)
    real = {
        "styled": score_real(judge, folds["probe_eval"], batch_size=budget.batch_size),
        "reference": score_real(judge, make_reference(digits, labels, eval_sources, key.image_size)),
    }
    return EvalData(key, folds["probe_fit"], folds["probe_eval"], judge, info, real)


def evaluate_model(model, objective: str, data: EvalData, budget: EvalBudget) -> dict:
    """Probe (Table 1) for every feature set of `objective`; edit fidelity for reference-based models."""
    from train.probe import FEATURES_BY_OBJECTIVE, digit_probe, encode_images, features_of, probe

    fit = encode_images(model, data.probe_fit.images, batch_size=budget.batch_size)
    held = encode_images(model, data.probe_eval.images, batch_size=budget.batch_size)
    result: dict = {"probe": {}}
    for feature in FEATURES_BY_OBJECTIVE[objective]:
        fit_x, held_x = features_of(fit, feature), features_of(held, feature)
        scores = probe(fit_x, data.probe_fit.factors, held_x, data.probe_eval.factors)
        result["probe"][feature] = scores.to_dict(FACTOR_NAMES)
        result["probe"][feature]["digit_accuracy"] = digit_probe(fit_x, data.probe_fit.labels, held_x, data.probe_eval.labels)
    if budget.refine:  # what `rbedit --refine N` edits with
        held = refine_edited(model, data.probe_eval, held, budget, seed=data.key.seed)
    return {**result, **edit_fidelity(model, objective, data, budget, held)}


def edit_fidelity(model, objective: str, data: EvalData, budget: EvalBudget, held) -> dict:
    """The edits of held-out images with latents `held`, judged: redraw; transfer, sampling, reference decoding."""
    from train.fidelity import reconstruction_fidelity, reference_fidelity, sampling_fidelity, transfer_fidelity

    seed = data.key.seed
    b = budget.batch_size
    result = {}
    result["reconstruction"] = reconstruction_fidelity(
        model, data.judge, data.probe_eval, held, images=budget.reference_images,
        seed=stream_seed(seed, "reference"), batch_size=b,
    )
    if objective not in REFERENCE_BASED:
        return result  # one undivided code: there is no z/e split to edit with
    result["transfer"] = transfer_fidelity(
        model, data.judge, data.probe_eval, held, pairs=budget.pairs, seed=stream_seed(seed, "pairs"), batch_size=b
    )
    result["sampling"] = sampling_fidelity(
        model, data.judge, data.probe_eval, held, images=budget.sample_images,
        samples=budget.samples_per_image, seed=stream_seed(seed, "sampling"), batch_size=b,
    )
    if model.config.e_prior == "fitted":  # what `rbedit sample` draws from by default
        result["sampling_fitted"] = sampling_fidelity(
            model, data.judge, data.probe_eval, held, images=budget.sample_images,
            samples=budget.samples_per_image, seed=stream_seed(seed, "sampling"), prior="fitted", batch_size=b,
        )
    result["reference"] = reference_fidelity(
        model, data.judge, data.probe_eval, held, images=budget.reference_images,
        seed=stream_seed(seed, "reference"), batch_size=b,
    )
    return result


def edited_images(data: DigitSet, budget: EvalBudget, seed: int) -> np.ndarray:
    """Sorted indices of the held-out images whose latents edit_fidelity decodes, for the model's data seed."""
    from train.fidelity import chosen_images, draw_pairs

    a, b = draw_pairs(data.labels, budget.pairs, seed=stream_seed(seed, "pairs"))
    sampled = chosen_images(data, budget.sample_images, np.random.default_rng(stream_seed(seed, "sampling")))
    redrawn = chosen_images(data, budget.reference_images, np.random.default_rng(stream_seed(seed, "reference")))
    return np.unique(np.concatenate([a, b, sampled, redrawn]))


def refine_edited(model, data: DigitSet, means, budget: EvalBudget, *, seed: int):
    """`means` with the rows of the edited images refined by budget.refine steps; the rest no edit decodes.

    RbVAE.refine fits each image on its own, so this is refining every image, up to
    rounding, at the cost of those the edits use: 2,442 of 5,000 at the default budget.
    (On the shipped model, B's digit kept 85.7 % both ways, redraw 91.5 % against 91.3 %.)
    """
    from train.probe import Latents, refined_latents

    rows = edited_images(data, budget, seed)
    refined = refined_latents(model, data.images[rows], budget.refine, batch_size=budget.batch_size)
    z, e = means.z.copy(), means.e.copy()
    z[rows], e[rows] = refined.z, refined.e
    return Latents(z=z, e=e)


def run_evaluation(
    entries: list[ModelEntry],
    budget: EvalBudget,
    *,
    cache_dir: str | Path | None = DEFAULT_CACHE,
    device: str = "cpu",
    log: Callable[[str], None] = lambda m: None,
) -> dict:
    """Evaluate every entry (held-out data and judge built once per DataKey); returns the report."""
    from train.targets import check_targets

    started = time.perf_counter()
    evaluated = evaluate_checkpoints(
        entries,
        prepare=lambda key, dev: prepare_data(key, budget, cache_dir=cache_dir, device=dev, log=log),
        evaluate=lambda model, objective, data: evaluate_model(model, objective, data, budget),
        describe_data=dataclasses.asdict,
        device=device,
        log=log,
    )
    data = [
        {
            **dataclasses.asdict(d.key),
            "probe_fit_images": len(d.probe_fit),
            "probe_eval_images": len(d.probe_eval),
            "judge": {**d.judge_info, "real": d.judge_real},
        }
        for d in evaluated.data
    ]
    report = {
        "evaluate_version": EVALUATE_VERSION,
        "budget": dataclasses.asdict(budget),
        "device": str(evaluated.device),
        "data": data,
        "models": evaluated.models,
    }
    report["targets"] = check_targets(report)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _override(text: str) -> tuple[str, object]:
    """KEY=VALUE for a TrainConfig field; VALUE as JSON where it parses, comma lists as tuples."""
    from train.config import TrainConfig

    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set needs KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    if key not in fields:
        raise argparse.ArgumentTypeError(f"--set: unknown training config field {key!r}")
    if "tuple" in str(fields[key].type):
        return key, tuple(json.loads(v) for v in value.split(","))
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _judge_override(text: str) -> tuple[str, object]:
    """KEY=VALUE for a JudgeConfig training field (not the data fields, which the model fixes)."""
    from train.judge import JudgeConfig

    return judge_override(text, JudgeConfig, data_fields={"image_size", "data_seed", "mnist_dir"})


def train_comparison(
    steps: int,
    runs_dir: Path,
    overrides: dict,
    *,
    progress: bool = True,
    log: Callable[[str], None] = lambda m: None,
) -> list[Path]:
    """Train the four objectives with the `digits` preset at `steps` steps each; reuse finished identical runs."""
    from train.config import preset
    from train.loop import train

    runs = []
    for objective in OBJECTIVES:
        cfg = preset("digits", **{**overrides, "objective": objective, "steps": steps,
                                   "run_dir": str(runs_dir / objective)})
        run = Path(cfg.run_dir)
        done = (run / RELEASE_DIR / "config.json").is_file() and (run / "config.json").is_file()
        if done and (run / "config.json").read_text() == cfg.to_json():
            log(f"reusing finished run {run}")
        else:
            if done or (run / "state.pt").exists():
                raise FileExistsError(f"{run} holds a different or unfinished run; remove it or pass another --runs-dir")
            log(f"training {objective} for {steps} steps in {run}")
            train(cfg, progress=progress)
        runs.append(run)
    return runs


def build_parser() -> argparse.ArgumentParser:
    parser = evaluation_parser(
        description="Table 1 probe, transfer fidelity and reference decoding for digits models (DESIGN §3).",
        models_nargs="*",
        models_help="run folders (with release/), checkpoint folders, embedded names or Hub ids",
    )
    parser.add_argument("--compare", action="store_true", help="first train srbvae, rbvae, vae and betavae, then evaluate all four")
    parser.add_argument("--steps", type=int, default=300, help="--compare: training steps per objective (default 300)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs/compare"), help="--compare: where the four runs go")
    parser.add_argument("--set", dest="overrides", action="append", default=[], type=_override, metavar="KEY=VALUE",
                        help="--compare: override a digits preset field (repeatable), e.g. --set threads=1")
    parser.add_argument("--probe-images", type=int, default=EvalBudget.probe_images, help="styled images per probe fold")
    parser.add_argument("--pairs", type=int, default=EvalBudget.pairs, help="transfer pairs")
    parser.add_argument("--sample-images", type=int, default=EvalBudget.sample_images)
    parser.add_argument("--samples-per-image", type=int, default=EvalBudget.samples_per_image)
    parser.add_argument("--reference-images", type=int, default=EvalBudget.reference_images)
    parser.add_argument("--refine", type=int, default=0, metavar="N",
                        help="edit with latents refined by N gradient steps, as `rbedit --refine N` (the probe reads the means)")
    parser.add_argument("--max-sources", type=int, help="use at most this many source digits per probe fold (quick runs)")
    parser.add_argument("--judge", dest="judge_overrides", action="append", default=[], type=_judge_override,
                        metavar="KEY=VALUE", help="judge training option (repeatable), e.g. --judge epochs=4")
    add_cache_and_device_options(parser)
    parser.add_argument("--objective", choices=OBJECTIVES, help="only for checkpoints that do not record it")
    parser.add_argument("--data-seed", type=int, help="only for checkpoints that do not record it")
    parser.add_argument("--mnist-dir", help="only for checkpoints that do not record it")
    parser.add_argument("--write-card", action="store_true",
                        help="for run folders: put the evaluation into release/README.md and release/evaluation.json")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    parser.add_argument("--no-progress", action="store_true", help="--compare: no training progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    from train.evaluate_faces import dispatch as faces_synth_dispatch

    if (code := faces_synth_dispatch(argv)) is not None:  # faces-synth checkpoints: train/evaluate_faces.py
        return code
    args = build_parser().parse_args(argv)
    if not args.models and not args.compare:
        build_parser().error("name at least one run or checkpoint, or pass --compare")
    from train.evaluation_tables import print_report, write_cards

    entries: list[ModelEntry] = []  # resolved by evaluate, read again for the model cards

    def evaluate(log: Callable[[str], None]) -> dict:
        names = list(args.models)
        if args.compare:
            runs = train_comparison(args.steps, args.runs_dir, dict(args.overrides), progress=not args.no_progress, log=log)
            names += [str(r) for r in runs]
        entries.extend(
            resolve_entry(n, objective=args.objective, data_seed=args.data_seed, mnist_dir=args.mnist_dir) for n in names
        )
        budget = EvalBudget(
            probe_images=args.probe_images,
            pairs=args.pairs,
            sample_images=args.sample_images,
            samples_per_image=args.samples_per_image,
            reference_images=args.reference_images,
            max_sources=args.max_sources,
            refine=args.refine,
            judge=dict(args.judge_overrides),
        )
        report = run_evaluation(entries, budget, cache_dir=args.cache_dir, device=args.device, log=log)
        if args.compare:
            report["compare"] = {"steps": args.steps, "runs_dir": str(args.runs_dir), "overrides": dict(args.overrides)}
        return report

    def write_model_cards(report: dict, log: Callable[[str], None]) -> None:
        if args.write_card:
            for path in write_cards(report, entries):
                log(f"model card updated: {path}")

    return run_evaluation_command(args, evaluate, print_report, after_report=write_model_cards)


if __name__ == "__main__":
    sys.exit(main())

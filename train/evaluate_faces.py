"""python -m train.evaluate RUN_OR_CHECKPOINT on a faces-synth model (issue 4, item 5; DESIGN §4).

`train.evaluate` hands faces-synth checkpoints to `main` here (see `dispatch`);
`python -m train.evaluate_faces` is the same command. Measured on faces-synth
faces the model never saw, with ground-truth factors:
- expression probe: ridge on posterior means of e and of z, MAE per expression
  factor as a fraction of its range (fit fold → disjoint eval fold);
- transfer O = G(z_B, e_A) for held-out pairs, read by a judge CNN trained on
  synthetic aligned faces at the model's size: how far the judged expression
  moves from B's toward A's, and how far the aligned identity factors drift
  from B's (fraction of each factor's range);
- reference decoding G(z_x, e_r): how neutral the judged expression is;
- the issue's floors, PASS/FAIL.
Training uses children 0 and 1 of SeedSequence(data_seed) (training_sets); the
evaluation draws its faces from children 2 and up, so no evaluated face was trained on.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from train.data.faces_synth import ALIGNED_IDENTITY_FACTORS, EXPRESSION_FACTORS, SynthFaces, aligned_faces, synth_template
from train.evaluated_models import RELEASE_DIR, evaluate_checkpoints, locate_checkpoint
from train.evaluation_cli import (
    DEFAULT_CACHE,
    add_cache_and_device_options,
    evaluation_parser,
    judge_override,
    run_evaluation_command,
)
from train.faces_judge import (
    JUDGE_FACTORS,
    N_EXPRESSION,
    NEUTRAL_UNITS,
    FacesJudgeConfig,
    expression_units,
    identity_units,
    load_or_train_faces_judge,
    named_values,
    read_faces,
    score_real_faces,
)

EVALUATE_FACES_VERSION = 1
PRESET = "faces-synth"
REFERENCE_BASED = ("srbvae", "rbvae")

# The floors of issue 4 ("Numbers").
E_OVER_Z_MAX = 0.5  # e-probe expression MAE ≤ this × z-probe expression MAE
TRANSFER_MIN = 0.70  # judged expression moves at least this far from B's toward A's (mean over pairs)
IDENTITY_MAX = 0.10  # judged aligned identity within this fraction of each factor's range of B's

# Pairs whose expressions nearly agree make "the fraction of the way" a ratio of
# two tiny numbers; they are redrawn. Units: expression factors scaled to [0, 1];
# a typical pair is ~0.8 apart, and about 1 % of pairs fall below this.
MIN_PAIR_DISTANCE = 0.25

# Children of SeedSequence(data_seed): 0 and 1 are training_sets' reference and unlabelled faces.
# 4 is the judge's faces (train.faces_judge.JUDGE_STREAM).
_STREAMS = {"probe_fit": 2, "probe_eval": 3, "pairs": 5, "reference": 6}


def stream_seed(data_seed: int, stream: str) -> np.random.SeedSequence:
    """The seed of one of the evaluation's random choices: a child of SeedSequence(data_seed) that training never uses."""
    return np.random.SeedSequence(data_seed).spawn(_STREAMS[stream] + 1)[_STREAMS[stream]]


@dataclass
class FacesBudget:
    """How many held-out faces the evaluation uses (tests shrink everything)."""

    probe_images: int = 2000  # faces per probe fold (fit and eval)
    pairs: int = 1000  # transfer pairs (A, B) from the probe-eval fold
    reference_images: int = 500  # faces decoded with e_r
    batch_size: int = 256
    judge: dict = field(default_factory=dict)  # FacesJudgeConfig overrides (tests: a tiny judge)


@dataclass(frozen=True)
class FacesDataKey:
    """What fixes the held-out faces: the data seed, the resolution and the alignment template."""

    seed: int
    image_size: int
    template: tuple[tuple[float, float], ...]

    def template_array(self) -> np.ndarray:
        return np.asarray(self.template, dtype=np.float64)


@dataclass
class FacesEntry:
    """One faces-synth model to evaluate, with the provenance read from its checkpoint."""

    name: str
    folder: Path  # the release checkpoint folder
    objective: str
    data: FacesDataKey
    run_dir: Path | None
    steps: int | None


@dataclass
class FacesData:
    """Held-out faces and the judge for one FacesDataKey."""

    key: FacesDataKey
    probe_fit: SynthFaces
    probe_eval: SynthFaces
    judge: object  # train.judge.Judge with 11 factor outputs and no classes
    judge_info: dict
    judge_real: dict  # the judge's own error on the real probe-eval faces


def _local_config(name: str):
    """The ModelConfig of a run folder, checkpoint folder or embedded model named `name`; None otherwise.

    Never touches the network: used to decide which protocol a command line asks for.
    """
    from rbedit.checkpoint import CheckpointError, load_config
    from rbedit.hub import EMBEDDED_NAME, EMBEDDED_ROOT

    path = Path(name).expanduser()
    candidates = [path / RELEASE_DIR, path]
    if EMBEDDED_NAME.match(name):
        candidates.append(EMBEDDED_ROOT / name)
    for folder in candidates:
        if (folder / "config.json").is_file():
            try:
                return load_config(folder)
            except CheckpointError:
                continue  # e.g. a run folder's own training config.json
    return None


def is_faces_synth(config) -> bool:
    return config is not None and config.domain == "faces" and (config.extra or {}).get("preset") == PRESET


def dispatch(argv: list[str] | None) -> int | None:
    """Run this evaluation when the command line names a local faces-synth checkpoint; None otherwise.

    train.evaluate.main calls this first: digits and faces-synth share one command.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(is_faces_synth(_local_config(a)) for a in argv if not a.startswith("-")):
        return main(argv)
    return None


def resolve_faces_entry(name: str, *, data_seed: int | None = None) -> FacesEntry:
    """A run folder (with release/), a checkpoint folder, an embedded name or a Hub id → FacesEntry."""
    from rbedit.checkpoint import load_config
    from train.probe import FEATURES_BY_OBJECTIVE

    folder, run_dir = locate_checkpoint(name)
    config = load_config(folder)
    if not is_faces_synth(config):
        what = "a digits model" if config.domain == "digits" else f"a {config.domain} model not trained on {PRESET}"
        raise ValueError(f"{name}: {what}; the faces-synth evaluation needs a {PRESET} checkpoint "
                         "(evaluate digits models in a separate call; real faces have no ground-truth factors)")
    extra = config.extra or {}
    seed = (extra.get("data") or {}).get("seed", data_seed)
    if seed is None:
        raise ValueError(f"{name}: checkpoint does not record its data seed (config.json extra.data.seed), "
                         "so its training faces are unknown; pass --data-seed")
    objective = extra.get("objective")
    if objective not in FEATURES_BY_OBJECTIVE:
        raise ValueError(f"{name}: checkpoint does not record its objective (config.json extra.objective)")
    # A faces checkpoint stores the template it was aligned with; older ones used synth_template.
    template = config.template if config.template is not None else synth_template(config.image_size).tolist()
    key = FacesDataKey(int(seed), int(config.image_size), tuple(tuple(map(float, p)) for p in template))
    return FacesEntry(name, folder, objective, key, run_dir, extra.get("steps"))


def probe_faces(fit_features: np.ndarray, fit: SynthFaces, eval_features: np.ndarray, held: SynthFaces) -> dict:
    """Ridge probes of expression and aligned identity (range units) from one feature set."""
    from train.probe import probe

    return {
        "expression": probe(fit_features, expression_units(fit.expression), eval_features,
                            expression_units(held.expression)).to_dict(EXPRESSION_FACTORS),
        "identity": probe(fit_features, identity_units(fit.identity), eval_features,
                          identity_units(held.identity)).to_dict(ALIGNED_IDENTITY_FACTORS),
    }


def draw_pairs(expression: np.ndarray, count: int, *, seed, min_distance: float = MIN_PAIR_DISTANCE):
    """`count` index pairs (A, B), A ≠ B, whose expressions (range units, (N, 4)) are ≥ min_distance apart."""
    rng = np.random.default_rng(seed)
    n = len(expression)
    if n < 2:
        raise ValueError("transfer pairs need at least two faces")
    a, b = rng.integers(0, n, size=count), rng.integers(0, n, size=count)
    for _ in range(1000):
        bad = (a == b) | (np.linalg.norm(expression[a] - expression[b], axis=1) < min_distance)
        if not bad.any():
            return a, b
        b[bad] = rng.integers(0, n, size=int(bad.sum()))
    raise ValueError(f"could not draw pairs whose expressions differ by ≥ {min_distance}; use more faces")


def decode_and_read(model, judge, z: np.ndarray, e: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Judge G(z, e) for (N, z_dim), (N, e_dim) latents, batch by batch → (N, 11) readings."""
    import torch

    model.eval()
    out = [np.zeros((0, len(JUDGE_FACTORS)), np.float32)]
    with torch.no_grad():
        for start in range(0, len(z), batch_size):
            zb = torch.from_numpy(z[start : start + batch_size]).to(model.device, torch.float32)
            eb = torch.from_numpy(e[start : start + batch_size]).to(model.device, torch.float32)
            out.append(read_faces(judge, model.decode(zb, eb), batch_size=batch_size))
    return np.concatenate(out)


def way_moved(judged: np.ndarray, start: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Per pair, the fraction of the way from `start` to `goal` that `judged` went: the projection
    (judged − start)·(goal − start) / |goal − start|²; 1 = at goal, 0 = not moved. All (N, F)."""
    delta = goal - start
    return ((judged - start) * delta).sum(axis=1) / (delta**2).sum(axis=1)


def _way_summary(fractions: np.ndarray) -> dict:
    return {"mean": float(fractions.mean()), "median": float(np.median(fractions))}


def transfer_fidelity(model, judge, faces: SynthFaces, latents, real: np.ndarray, *, pairs: int, seed,
                      batch_size: int = 256) -> dict:
    """O = G(z_B, e_A) on held-out pairs: how far its judged expression moves from B's true one toward
    A's, and how far its judged aligned identity is from B's (range units).

    A decoder that always drew the average expression would move ~50 % of the way
    (regression to the mean), so "no edit" (G(z_B, e_B), ideally ~0) is reported
    beside it, and "judge ceiling" (the judge reading the real A, ideally ~1).
    `real` (N, 11): the judge's readings of the real faces.
    """
    expr, ident = expression_units(faces.expression), identity_units(faces.identity)
    a, b = draw_pairs(expr, pairs, seed=seed)
    edited = decode_and_read(model, judge, latents.z[b], latents.e[a], batch_size=batch_size)
    kept = decode_and_read(model, judge, latents.z[b], latents.e[b], batch_size=batch_size)  # G(z_B, e_B)
    way = way_moved(edited[:, :N_EXPRESSION], expr[b], expr[a])
    delta = expr[a] - expr[b]
    per_factor = ((edited[:, :N_EXPRESSION] - expr[b]) * delta).sum(axis=0) / (delta**2).sum(axis=0)  # pooled per factor
    id_error = np.abs(edited[:, N_EXPRESSION:] - ident[b]).mean(axis=0)
    id_vs_judged = np.abs(edited[:, N_EXPRESSION:] - real[b, N_EXPRESSION:]).mean(axis=0)
    id_no_edit = np.abs(kept[:, N_EXPRESSION:] - ident[b]).mean(axis=0)
    return {
        "pairs": int(pairs),
        "way": _way_summary(way),
        "way_per_factor": named_values(EXPRESSION_FACTORS, per_factor),
        "expression_mae_to_a": named_values(EXPRESSION_FACTORS, np.abs(edited[:, :N_EXPRESSION] - expr[a]).mean(axis=0)),
        "identity_error": named_values(ALIGNED_IDENTITY_FACTORS, id_error),
        "identity_error_average": float(id_error.mean()),
        "identity_error_max": float(id_error.max()),
        # Against the judge's own reading of the real B: the judge's bias cancels.
        "identity_error_vs_judged_b_average": float(id_vs_judged.mean()),
        # What the same readings give with no edit (G(z_B, e_B), ~0) and for the real A (the judge's ceiling, ~1).
        "no_edit_way": _way_summary(way_moved(kept[:, :N_EXPRESSION], expr[b], expr[a])),
        # Identity G loses before any edit: no transfer keeps more than G(z_B, e_B) redraws.
        "no_edit_identity_error": named_values(ALIGNED_IDENTITY_FACTORS, id_no_edit),
        "no_edit_identity_error_average": float(id_no_edit.mean()),
        "judge_ceiling_way": _way_summary(way_moved(real[a, :N_EXPRESSION], expr[b], expr[a])),
    }


def reference_decoding(model, judge, faces: SynthFaces, latents, *, images: int, seed, batch_size: int = 256) -> dict:
    """O = G(z_x, e_r): judged expression against neutral, judged identity against x's (range units)."""
    chosen = np.random.default_rng(seed).choice(len(faces), size=min(images, len(faces)), replace=False)
    e_ref = np.tile(model.e_ref.detach().float().cpu().numpy(), (len(chosen), 1)).astype(np.float32)
    read = decode_and_read(model, judge, latents.z[chosen], e_ref, batch_size=batch_size)
    expr_error = np.abs(read[:, :N_EXPRESSION] - NEUTRAL_UNITS).mean(axis=0)
    id_error = np.abs(read[:, N_EXPRESSION:] - identity_units(faces.identity[chosen])).mean(axis=0)
    return {
        "images": int(len(chosen)),
        "neutral_mae": named_values(EXPRESSION_FACTORS, expr_error),
        "neutral_mae_average": float(expr_error.mean()),
        "identity_error_average": float(id_error.mean()),
    }


def prepare_faces_data(key: FacesDataKey, budget: FacesBudget, *, cache_dir, device="cpu",
                       log: Callable[[str], None] = lambda m: None) -> FacesData:
    """Draw the probe folds of `key` and load (or train) its judge."""
    template = key.template_array()
    folds = {
        fold: aligned_faces(budget.probe_images, size=key.image_size, seed=stream_seed(key.seed, fold), template=template)
        for fold in ("probe_fit", "probe_eval")
    }
    log(f"probe folds: {budget.probe_images} + {budget.probe_images} faces at {key.image_size}×{key.image_size}")
    config = FacesJudgeConfig(image_size=key.image_size, data_seed=key.seed, **budget.judge)
    judge_cache = Path(cache_dir) / "judges" if cache_dir is not None else None
    judge, info = load_or_train_faces_judge(config, template, cache_dir=judge_cache, device=device, log=log)
    real = score_real_faces(judge, folds["probe_eval"], batch_size=budget.batch_size)
    return FacesData(key, folds["probe_fit"], folds["probe_eval"], judge, info, real)


def evaluate_faces_model(model, objective: str, data: FacesData, budget: FacesBudget) -> dict:
    """Probes for every feature set of `objective`; transfer and reference decoding for reference-based models."""
    from train.probe import FEATURES_BY_OBJECTIVE, encode_images, features_of

    fit = encode_images(model, data.probe_fit.images, batch_size=budget.batch_size)
    held = encode_images(model, data.probe_eval.images, batch_size=budget.batch_size)
    result: dict = {"probe": {
        feature: probe_faces(features_of(fit, feature), data.probe_fit, features_of(held, feature), data.probe_eval)
        for feature in FEATURES_BY_OBJECTIVE[objective]
    }}
    if objective not in REFERENCE_BASED:
        return result
    real = read_faces(data.judge, data.probe_eval.images, batch_size=budget.batch_size)
    result["transfer"] = transfer_fidelity(model, data.judge, data.probe_eval, held, real, pairs=budget.pairs,
                                           seed=stream_seed(data.key.seed, "pairs"), batch_size=budget.batch_size)
    result["reference"] = reference_decoding(model, data.judge, data.probe_eval, held, images=budget.reference_images,
                                             seed=stream_seed(data.key.seed, "reference"), batch_size=budget.batch_size)
    return result


def _line(model: str, target: str, measured: str, ok: bool) -> dict:
    return {"model": model, "target": target, "measured": measured, "status": "PASS" if ok else "FAIL"}


def check_floors(report: dict) -> list[dict]:
    """PASS / FAIL per floor of issue 4, for every reference-based model of the report."""
    lines = []
    for m in report["models"]:
        if "transfer" not in m:
            continue
        e, z = m["probe"]["e"]["expression"]["average"], m["probe"]["z"]["expression"]["average"]
        lines.append(_line(m["name"], f"e-probe expression MAE ≤ {E_OVER_Z_MAX} × z-probe",
                           f"{e:.4f} / {z:.4f} = {e / z:.2f}", e <= E_OVER_Z_MAX * z))
        way = m["transfer"]["way"]
        lines.append(_line(m["name"], f"transfer moves judged expression ≥ {TRANSFER_MIN:.0%} of the way B → A",
                           f"mean {way['mean']:.1%} (median {way['median']:.1%})", way["mean"] >= TRANSFER_MIN))
        t = m["transfer"]
        worst = max(t["identity_error"], key=t["identity_error"].get)
        lines.append(_line(m["name"], f"transfer identity within {IDENTITY_MAX:.0%} of range of B's (mean over factors)",
                           f"{t['identity_error_average']:.1%} (worst: {worst} {t['identity_error_max']:.1%})",
                           t["identity_error_average"] <= IDENTITY_MAX))
    return lines


def run_faces_evaluation(entries: list[FacesEntry], budget: FacesBudget, *, cache_dir=DEFAULT_CACHE,
                         device: str = "cpu", log: Callable[[str], None] = lambda m: None) -> dict:
    """Evaluate every entry (faces and judge built once per FacesDataKey); returns the report."""
    started = time.perf_counter()
    evaluated = evaluate_checkpoints(
        entries,
        prepare=lambda key, dev: prepare_faces_data(key, budget, cache_dir=cache_dir, device=dev, log=log),
        evaluate=lambda model, objective, data: evaluate_faces_model(model, objective, data, budget),
        describe_data=lambda key: {"seed": key.seed, "image_size": key.image_size},
        device=device,
        log=log,
    )
    data = [{"seed": d.key.seed, "image_size": d.key.image_size, "probe_fit_images": len(d.probe_fit),
             "probe_eval_images": len(d.probe_eval), "judge": {**d.judge_info, "real": d.judge_real}}
            for d in evaluated.data]
    report = {"evaluate_version": EVALUATE_FACES_VERSION, "protocol": PRESET, "budget": dataclasses.asdict(budget),
              "device": str(evaluated.device), "data": data, "models": evaluated.models}
    report["targets"] = check_floors(report)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def print_faces_report(report: dict, console) -> None:
    """Probe, transfer, identity, the judge's own error and the floors, as rich tables."""
    from rich.table import Table

    from train.evaluation_tables import STATUS_STYLE, _fmt

    def table(title: str, columns: tuple[str, ...]) -> Table:
        t = Table(title=title)
        for col in columns:
            t.add_column(col, justify="left" if col in ("model", "features", "data", "floor", "measured") else "right")
        return t

    probe = table("Expression probe (faces-synth): ridge MAE as a fraction of each factor's range, held-out faces",
                  ("model", "features", *EXPRESSION_FACTORS, "Avg", "chance", "identity Avg"))
    for m in report["models"]:
        for feature, scores in m["probe"].items():
            ex = scores["expression"]
            probe.add_row(m["name"], feature, *[_fmt(ex["mae"][n]) for n in EXPRESSION_FACTORS], _fmt(ex["average"]),
                          _fmt(ex["chance_average"]), _fmt(scores["identity"]["average"]))
    console.print(probe)

    edited = [m for m in report["models"] if "transfer" in m]
    if edited:
        fid = table("Transfer G(z_B, e_A), read by the judge: fraction of the way B → A (1 = A's expression)",
                    ("model", "mean", "median", *EXPRESSION_FACTORS, "no edit", "judge on real A", "e_r vs neutral"))
        for m in edited:
            t = m["transfer"]
            fid.add_row(m["name"], f"{t['way']['mean']:.1%}", f"{t['way']['median']:.1%}",
                        *[f"{t['way_per_factor'][n]:.1%}" for n in EXPRESSION_FACTORS],
                        f"{t['no_edit_way']['mean']:.1%}", f"{t['judge_ceiling_way']['mean']:.1%}",
                        _fmt(m["reference"]["neutral_mae_average"]))
        console.print(fid)
        ident = table("Identity of G(z_B, e_A): judged |identity − B's| as a fraction of range",
                      ("model", *ALIGNED_IDENTITY_FACTORS, "Avg", "vs judged B"))
        for m in edited:
            t = m["transfer"]
            ident.add_row(m["name"], *[_fmt(t["identity_error"][n]) for n in ALIGNED_IDENTITY_FACTORS],
                          _fmt(t["identity_error_average"]), _fmt(t["identity_error_vs_judged_b_average"]))
            ident.add_row(f"[dim]{m['name']}: no edit, G(z_B, e_B)[/dim]",
                          *[f"[dim]{_fmt(t['no_edit_identity_error'][n])}[/dim]" for n in ALIGNED_IDENTITY_FACTORS],
                          f"[dim]{_fmt(t['no_edit_identity_error_average'])}[/dim]", "")
        for d in report["data"]:
            real = d["judge"]["real"]["identity_mae"]
            ident.add_row(f"[dim]judge on real faces (seed {d['seed']})[/dim]",
                          *[f"[dim]{_fmt(real[n])}[/dim]" for n in ALIGNED_IDENTITY_FACTORS],
                          f"[dim]{_fmt(d['judge']['real']['identity_mae_average'])}[/dim]", "")
        console.print(ident)

    judge = table("The faces judge on real held-out faces (its own error)",
                  ("data", "expression MAE", "identity MAE", "judge"))
    for d in report["data"]:
        real = d["judge"]["real"]
        judge.add_row(f"seed {d['seed']}, {d['image_size']}px", _fmt(real["expression_mae_average"]),
                      _fmt(real["identity_mae_average"]),
                      "cached" if d["judge"].get("cached") else f"trained in {d['judge'].get('train_seconds', '?')} s")
    console.print(judge)

    if report["targets"]:
        floors = table("Issue 4 floors (faces-synth)", ("model", "floor", "measured", "status"))
        for t in report["targets"]:
            floors.add_row(t["model"], t["target"], t["measured"], f"[{STATUS_STYLE[t['status']]}]{t['status']}[/]")
        console.print(floors)
    else:
        console.print("[yellow]no reference-based model evaluated: the floors were not checked[/yellow]")


def _judge_override(text: str) -> tuple[str, object]:
    """KEY=VALUE for a FacesJudgeConfig training field (not the data fields, which the model fixes)."""
    return judge_override(text, FacesJudgeConfig, data_fields={"image_size", "data_seed"})


def build_parser() -> argparse.ArgumentParser:
    parser = evaluation_parser(
        description="faces-synth models: expression probe (e vs z), judged transfer and identity (issue 4).",
        models_nargs="+",
        models_help="faces-synth run folders (with release/), checkpoint folders or Hub ids",
    )
    parser.add_argument("--probe-images", type=int, default=FacesBudget.probe_images, help="faces per probe fold")
    parser.add_argument("--pairs", type=int, default=FacesBudget.pairs, help="transfer pairs")
    parser.add_argument("--reference-images", type=int, default=FacesBudget.reference_images)
    parser.add_argument("--judge", dest="judge_overrides", action="append", default=[], type=_judge_override,
                        metavar="KEY=VALUE", help="faces judge training option (repeatable), e.g. --judge epochs=4")
    add_cache_and_device_options(parser)
    parser.add_argument("--data-seed", type=int, help="only for checkpoints that do not record it")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a floor fails")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def evaluate(log: Callable[[str], None]) -> dict:
        entries = [resolve_faces_entry(n, data_seed=args.data_seed) for n in args.models]
        budget = FacesBudget(probe_images=args.probe_images, pairs=args.pairs,
                             reference_images=args.reference_images, judge=dict(args.judge_overrides))
        return run_faces_evaluation(entries, budget, cache_dir=args.cache_dir, device=args.device, log=log)

    return run_evaluation_command(args, evaluate, print_faces_report)


if __name__ == "__main__":
    sys.exit(main())

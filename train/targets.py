"""The DESIGN §3 targets for a digits checkpoint, checked against an evaluation report.

Each srbvae model is checked; the comparisons use the rbvae / vae models of
the same report evaluated on the same held-out data (same data seed, source
digits and resolution). A comparison without its partner is N/A, never PASS.
"""

from __future__ import annotations

E_PROBE_MAX = 0.050  # paper: 0.060
VAE_RATIO_MAX = 0.70  # e-probe / VAE all-latent probe (paper: 0.71)
Z_OVER_E_MIN = 3.0  # z-probe / e-probe (paper: 0.189 / 0.060)
TRANSFER_STYLE_MAX = 0.06
IDENTITY_MIN = 0.95
IDENTITY_JUDGE_SLACK = 0.02  # "within 2 points of the judge's own accuracy"


def _line(model: str, target: str, measured: str, ok: bool | None) -> dict:
    return {"model": model, "target": target, "measured": measured,
            "status": "N/A" if ok is None else "PASS" if ok else "FAIL"}


def _partner(report: dict, model: dict, objective: str) -> dict | None:
    same = [m for m in report["models"] if m["objective"] == objective and m["data"] == model["data"]]
    return same[0] if same else None


def _judge_accuracy(report: dict, model: dict) -> float | None:
    for d in report["data"]:
        if all(d[k] == v for k, v in model["data"].items()):
            return d["judge"]["real"]["styled"]["digit_accuracy"]
    return None


def check_targets(report: dict) -> list[dict]:
    """PASS / FAIL / N/A per target line, for every srbvae model in the report."""
    lines = []
    for m in report["models"]:
        if m["objective"] != "srbvae":
            continue
        name = m["name"]
        e = m["probe"]["e"]["average"]
        z = m["probe"]["z"]["average"]
        lines.append(_line(name, f"e-probe average MAE ≤ {E_PROBE_MAX:.3f}", f"{e:.4f}", e <= E_PROBE_MAX))

        vae = _partner(report, m, "vae")
        target = f"e-probe ≤ {VAE_RATIO_MAX:.2f} × VAE all-latent probe"
        if vae is None:
            lines.append(_line(name, target, "no vae model evaluated on the same data", None))
        else:
            v = vae["probe"]["all"]["average"]
            lines.append(_line(name, target, f"{e:.4f} / {v:.4f} = {e / v:.2f} ({vae['name']})", e <= VAE_RATIO_MAX * v))

        lines.append(_line(name, f"z-probe ≥ {Z_OVER_E_MIN:.0f} × e-probe", f"{z:.4f} / {e:.4f} = {z / e:.2f}",
                           z >= Z_OVER_E_MIN * e))

        rb = _partner(report, m, "rbvae")
        target = "e-probe better than rbvae e-probe"
        if rb is None:
            lines.append(_line(name, target, "no rbvae model evaluated on the same data", None))
        else:
            r = rb["probe"]["e"]["average"]
            lines.append(_line(name, target, f"{e:.4f} vs {r:.4f} ({rb['name']})", e < r))

        t = m["transfer"]
        lines.append(_line(name, f"transfer judged style MAE ≤ {TRANSFER_STYLE_MAX:.2f}",
                           f"{t['style_mae_average']:.4f}", t["style_mae_average"] <= TRANSFER_STYLE_MAX))

        kept = t["identity_kept"]
        judge = _judge_accuracy(report, m)
        measured = f"{kept:.1%} (judge on real held-out digits: {judge:.1%})" if judge is not None else f"{kept:.1%}"
        ok = kept >= IDENTITY_MIN or (
            judge is not None and judge < IDENTITY_MIN and kept >= judge - IDENTITY_JUDGE_SLACK
        )
        lines.append(_line(name, f"transfer identity kept ≥ {IDENTITY_MIN:.0%} (or ≥ judge accuracy − 2 points)",
                           measured, ok))
    return lines

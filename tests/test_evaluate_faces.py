"""faces-synth evaluation: probe, pairs, floors, and the whole command on a tiny random checkpoint."""

import json

import numpy as np
import pytest
import torch

from rbedit.checkpoint import save_checkpoint
from rbedit.model import ModelConfig, RbVAE
from train.data.faces_synth import SynthFaces, sample_factors, synth_template
from train.evaluate_faces import (
    FacesBudget,
    check_floors,
    draw_pairs,
    probe_faces,
    resolve_faces_entry,
    run_faces_evaluation,
    stream_seed,
    way_moved,
)
from train.faces_judge import JUDGE_STREAM, judge_stream

TINY_JUDGE = {"images": 32, "epochs": 1, "width": 4, "batch_size": 16}
TINY_ARGS = ["--probe-images", "40", "--pairs", "10", "--reference-images", "5",
             *[f"--judge={k}={v}" for k, v in TINY_JUDGE.items()]]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _faces_checkpoint(folder, *, objective="srbvae", preset="faces-synth", seed=0):
    torch.manual_seed(seed)
    config = ModelConfig(
        domain="faces", image_size=8, channels=(4, 4), z_dim=2, e_dim=2,
        template=tuple(map(tuple, synth_template(8).tolist())),
        extra={"objective": objective, "preset": preset, "steps": 3, "data": {"seed": 0, "image_size": 8}},
    )
    model = RbVAE(config)
    with torch.no_grad():
        model.e_ref.normal_()
    return save_checkpoint(model, folder)


def _factors_only(n, seed):
    """Faces with factors and blank images: the probe reads only the factors."""
    expression, identity = sample_factors(n, np.random.default_rng(seed))
    return SynthFaces(np.zeros((n, 8, 8, 3), np.uint8), expression.astype(np.float32),
                      identity.astype(np.float32), np.zeros((n, 68, 2), np.float32))


def test_probe_recovers_expression_from_ground_truth_like_features():
    fit, held = _factors_only(400, 1), _factors_only(400, 2)
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((4, 6))  # e-like: a linear mix of the expression factors, plus noise
    identity_mix = rng.standard_normal((7, 8))  # z-like: a mix of the aligned identity factors only

    def e_like(faces):
        return faces.expression @ mix + 0.01 * rng.standard_normal((len(faces), 6))

    def z_like(faces):
        return faces.identity[:, :7] @ identity_mix

    from_e = probe_faces(e_like(fit), fit, e_like(held), held)["expression"]
    from_z = probe_faces(z_like(fit), fit, z_like(held), held)
    assert from_e["average"] < 0.02 and from_e["chance_average"] > 0.2  # range units: uniform factors → ~0.25
    assert set(from_e["mae"]) == {"mouth_curve", "mouth_open", "brow_raise", "eye_open"}
    assert from_z["expression"]["average"] > 0.8 * from_z["expression"]["chance_average"]
    assert from_z["identity"]["average"] < 0.1 * from_z["identity"]["chance_average"]


def test_way_moved():
    start, goal = np.array([[0.0, 0.0], [0.2, 0.8]]), np.array([[1.0, 1.0], [0.6, 0.0]])
    assert np.allclose(way_moved(goal, start, goal), 1) and np.allclose(way_moved(start, start, goal), 0)
    assert np.allclose(way_moved((start + goal) / 2, start, goal), 0.5)
    sideways = start + np.array([[1.0, -1.0], [0.8, 0.4]])  # orthogonal to goal − start: no progress
    assert np.allclose(way_moved(sideways, start, goal), 0)


def test_pairs_are_distinct_and_apart():
    expression = np.random.default_rng(0).random((30, 4))
    a, b = draw_pairs(expression, 200, seed=0, min_distance=0.3)
    assert (a != b).all() and (np.linalg.norm(expression[a] - expression[b], axis=1) >= 0.3).all()
    with pytest.raises(ValueError, match="could not draw"):
        draw_pairs(np.zeros((5, 4)), 3, seed=0)


def test_evaluation_streams_are_not_training_streams():
    training = [s.generate_state(4).tolist() for s in np.random.SeedSequence(7).spawn(2)]  # training_sets
    ours = [stream_seed(7, s).generate_state(4).tolist() for s in ("probe_fit", "probe_eval", "pairs", "reference")]
    ours.append(judge_stream(7).generate_state(4).tolist())
    assert len({tuple(s) for s in training + ours}) == len(training) + len(ours)
    assert ours[0] == np.random.SeedSequence(7).spawn(4)[2].generate_state(4).tolist()
    assert JUDGE_STREAM not in (0, 1)


def test_floors_pass_and_fail():
    def model(e, z, way, identity):
        errors = {"face_width": identity, "skin_tone": identity / 2}
        return {"name": "m", "probe": {"e": {"expression": {"average": e}}, "z": {"expression": {"average": z}}},
                "transfer": {"way": {"mean": way, "median": way}, "identity_error": errors,
                             "identity_error_average": 0.75 * identity, "identity_error_max": identity}}

    good = check_floors({"models": [model(0.05, 0.2, 0.8, 0.12)]})  # mean 9 % passes, worst factor 12 % shown
    assert [t["status"] for t in good] == ["PASS", "PASS", "PASS"] and "face_width" in good[2]["measured"]
    bad = check_floors({"models": [model(0.11, 0.2, 0.6, 0.2)]})
    assert [t["status"] for t in bad] == ["FAIL", "FAIL", "FAIL"]
    assert check_floors({"models": [{"name": "vae", "probe": {"all": {}}}]}) == []


def test_train_evaluate_dispatches_faces_synth_end_to_end(tmp_path, capsys):
    from train.evaluate import main

    run = tmp_path / "run"
    _faces_checkpoint(run / "release")
    (run / "config.json").write_text("{}")  # a run folder: release/ plus its training config
    out = tmp_path / "report.json"
    code = main([str(run), "--json", str(out), "--cache-dir", str(tmp_path / "cache"), *TINY_ARGS])
    assert code == 0
    assert "Issue 4 floors" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["protocol"] == "faces-synth" and len(report["models"]) == 1
    m = report["models"][0]
    assert set(m["probe"]) == {"e", "z"}
    numbers = [m["probe"][f][part]["average"] for f in ("e", "z") for part in ("expression", "identity")]
    t = m["transfer"]
    numbers += [t["way"]["mean"], t["way"]["median"], t["identity_error_average"],
                t["no_edit_way"]["mean"], t["no_edit_identity_error_average"], t["judge_ceiling_way"]["mean"],
                m["reference"]["neutral_mae_average"]]
    numbers += [report["data"][0]["judge"]["real"]["expression_mae_average"]]
    assert np.isfinite(numbers).all()
    assert [x["status"] in ("PASS", "FAIL") for x in report["targets"]] == [True] * 3
    assert report["data"][0]["probe_eval_images"] == 40
    assert len(list((tmp_path / "cache" / "judges").iterdir())) == 1

    # The judge is reused; a vae-style model gets the probe only.
    vae = _faces_checkpoint(tmp_path / "vae", objective="vae", seed=1)
    budget = FacesBudget(probe_images=40, pairs=10, reference_images=5, judge=TINY_JUDGE)
    again = run_faces_evaluation([resolve_faces_entry(str(vae))], budget, cache_dir=tmp_path / "cache")
    assert again["data"][0]["judge"]["cached"] and set(again["models"][0]["probe"]) == {"all"}
    assert again["targets"] == []


def test_non_synth_checkpoints_are_refused(tmp_path):
    from train.evaluate import main

    real_faces = _faces_checkpoint(tmp_path / "faces", preset="faces")
    with pytest.raises(ValueError, match="faces-synth checkpoint"):
        resolve_faces_entry(str(real_faces))
    synth = _faces_checkpoint(tmp_path / "synth")
    digits = save_checkpoint(RbVAE(ModelConfig(image_size=8, z_dim=2, e_dim=2, channels=(4, 4))), tmp_path / "digits")
    assert main([str(synth), str(digits), "--cache-dir", str(tmp_path / "cache"), *TINY_ARGS]) == 1  # mixed: an error

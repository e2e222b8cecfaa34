"""The model and its release checkpoint: shapes, save → load, strict loading."""

import dataclasses
import json

import pytest
import torch

from rbedit.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rbedit.model import ModelConfig, RbVAE

TINY = ModelConfig(image_size=8, channels=(4, 8), z_dim=3, e_dim=2)


def test_shapes():
    torch.manual_seed(0)
    model = RbVAE(TINY)
    x = torch.rand(5, 3, 8, 8) * 2 - 1
    qz, qe = model.encode_z(x), model.encode_e(x)
    assert qz.mu.shape == qz.logvar.shape == (5, 3)
    assert qe.mu.shape == (5, 2)
    out = model.decode(qz.sample(), model.reference_e(5))
    assert out.shape == (5, 3, 8, 8)
    assert out.abs().max() <= 1.0
    assert "e_ref" in dict(model.named_parameters())


def test_config_rejects_wrong_channel_count():
    with pytest.raises(ValueError, match="channels needs 4 entries"):
        ModelConfig(image_size=32, channels=(8, 16))


def test_pooled_e_sees_block_means_only():
    torch.manual_seed(0)
    model = RbVAE(ModelConfig(image_size=8, channels=(4, 8), z_dim=3, e_dim=2, e_pool=4))
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    shuffled = x.clone()  # rows 0 and 1 swapped: the same 4×4 block means, other pixels
    shuffled[:, :, 0], shuffled[:, :, 1] = x[:, :, 1], x[:, :, 0]
    with torch.no_grad():
        assert torch.allclose(model.encode_e(x).mu, model.encode_e(shuffled).mu, atol=1e-6)
        assert not torch.allclose(model.encode_z(x).mu, model.encode_z(shuffled).mu, atol=1e-4)
    with pytest.raises(ValueError, match="e_pool"):
        ModelConfig(image_size=8, channels=(4, 8), e_pool=3)


def test_grey_e_sees_no_colour():
    torch.manual_seed(0)
    model = RbVAE(ModelConfig(image_size=8, channels=(4, 8), z_dim=3, e_dim=2, e_grey=True))
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    recoloured = x[:, [2, 0, 1]]  # the channels rotated: the same grey, other colours
    with torch.no_grad():
        assert torch.allclose(model.encode_e(x).mu, model.encode_e(recoloured).mu, atol=1e-6)
        assert not torch.allclose(model.encode_z(x).mu, model.encode_z(recoloured).mu, atol=1e-4)


def test_shape_z_sees_neither_the_ink_colour_nor_its_brightness():
    torch.manual_seed(0)
    model = RbVAE(ModelConfig(image_size=8, channels=(4, 8), z_dim=3, e_dim=2, z_shape=True))
    shape = (torch.rand(1, 1, 8, 8) > 0.6).float()  # where the ink is
    white = 2 * shape.expand(1, 3, 8, 8) - 1
    dim_red = 2 * shape * torch.tensor([0.8, 0.1, 0.3]).view(1, 3, 1, 1) - 1
    other_shape = 2 * (torch.rand(1, 1, 8, 8) > 0.6).float().expand(1, 3, 8, 8) - 1
    with torch.no_grad():
        assert torch.allclose(model.encode_z(white).mu, model.encode_z(dim_red).mu, atol=1e-5)
        assert not torch.allclose(model.encode_z(white).mu, model.encode_z(other_shape).mu, atol=1e-4)
        assert not torch.allclose(model.encode_e(white).mu, model.encode_e(dim_red).mu, atol=1e-4)


def _randomise_styles(model: RbVAE) -> None:
    for style in model.generator.styles:
        torch.nn.init.normal_(style.weight, std=0.5)


def test_every_level_injection_starts_as_the_paper_generator():
    torch.manual_seed(0)
    paper = RbVAE(TINY)
    modulated = RbVAE(dataclasses.replace(TINY, e_inject="every-level"))
    missing, unexpected = modulated.load_state_dict(paper.state_dict(), strict=False)
    assert all(key.startswith("generator.styles.") for key in missing) and missing and not unexpected
    z, e = torch.randn(4, 3), torch.randn(4, 2)
    with torch.no_grad():
        assert torch.equal(modulated.decode(z, e), paper.decode(z, e))  # zero styles: unmodulated
        _randomise_styles(modulated)
        assert not torch.allclose(modulated.decode(z, e), paper.decode(z, e), atol=1e-4)


def test_levels_only_injection_keeps_e_out_of_the_first_layer():
    torch.manual_seed(0)
    model = RbVAE(dataclasses.replace(TINY, e_inject="levels-only"))
    assert model.generator.fc.in_features == 3
    z, e = torch.randn(4, 3), torch.randn(4, 2)
    with torch.no_grad():
        assert torch.equal(model.decode(z, e), model.decode(z, torch.zeros_like(e)))  # styles start at zero
        _randomise_styles(model)
        assert not torch.allclose(model.decode(z, e), model.decode(z, torch.zeros_like(e)), atol=1e-4)
    with pytest.raises(ValueError, match="e_inject"):
        ModelConfig(image_size=8, channels=(4, 8), e_inject="late")


def _conv_widths(network):
    """(in, out) channels of each convolution in a network, in order."""
    return [(m.in_channels, m.out_channels) for m in network.modules() if isinstance(m, torch.nn.Conv2d)]


def test_two_convolutions_per_level():
    torch.manual_seed(0)
    one, two = RbVAE(TINY), RbVAE(dataclasses.replace(TINY, level_convs=2, e_inject="levels-only"))

    # From RGB, then per level (8 → 4) and at 4×4; the encoders widen at a level's last convolution, G at its first.
    assert _conv_widths(one.z_encoder) == [(3, 4), (4, 8), (8, 8)]
    assert _conv_widths(two.z_encoder) == [(3, 4), (4, 4), (4, 8), (8, 8)]
    assert _conv_widths(one.generator) == [(8, 8), (8, 4), (4, 3)]
    assert _conv_widths(two.generator) == [(8, 8), (8, 4), (4, 4), (4, 3)]
    assert [style.out_features for style in two.generator.styles] == [16, 8, 8]  # one per pixel norm
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    assert two(x).shape == x.shape
    with pytest.raises(ValueError, match="level_convs"):
        ModelConfig(image_size=8, channels=(4, 8), level_convs=0)


def test_deeper_encoders_leave_the_generator_as_it_is():
    torch.manual_seed(0)
    deep = RbVAE(dataclasses.replace(TINY, encoder_convs=2))
    shallow_g = RbVAE(TINY).generator

    assert _conv_widths(deep.z_encoder) == _conv_widths(deep.e_encoder) == [(3, 4), (4, 4), (4, 8), (8, 8)]
    assert _conv_widths(deep.generator) == _conv_widths(shallow_g)
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    assert deep(x).shape == x.shape
    with pytest.raises(ValueError, match="encoder_convs"):
        ModelConfig(image_size=8, channels=(4, 8), encoder_convs=0)


def test_warp_starts_at_the_identity_and_moves_the_drawing():
    torch.manual_seed(0)
    plain = RbVAE(TINY)
    after_plain = torch.random.get_rng_state()
    torch.manual_seed(0)
    warped = RbVAE(dataclasses.replace(TINY, e_warp=True))
    # The warp draws nothing from the random stream, so the same seed starts every other
    # network alike, the discriminators built after the model included.
    assert torch.equal(torch.random.get_rng_state(), after_plain)
    shared = warped.state_dict()
    assert sorted(set(shared) - set(plain.state_dict())) == ["generator.warp.bias", "generator.warp.weight"]
    assert all(torch.equal(value, shared[name]) for name, value in plain.state_dict().items())
    z, e = torch.randn(4, 3), torch.randn(4, 2)
    with torch.no_grad():
        assert torch.allclose(warped.decode(z, e), plain.decode(z, e), atol=1e-6)  # the identity map
        # A shift by e's first number alone, of one pixel column (2 / 8 of the [-1, 1] grid) per
        # unit: with e[:, 0] = 1, output column j samples the drawing's column j + 1.
        warped.generator.warp.weight[2, 0] = 2 / 8
        e[:, 0] = 1.0
        moved, drawn = warped.decode(z, e), plain.decode(z, e)
    assert torch.allclose(moved[..., :-1], drawn[..., 1:], atol=1e-5)
    assert torch.allclose(moved[..., -1], drawn[..., -1], atol=1e-5)  # beyond the edge: the edge's colour


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize(
    "e_inject, e_warp, level_convs, encoder_convs",
    [("input", False, 1, None), ("levels-only", False, 1, 2), ("levels-only", True, 2, None)],
)
def test_save_load_round_trip(tmp_path, dtype, e_inject, e_warp, level_convs, encoder_convs):
    torch.manual_seed(0)
    model = RbVAE(
        dataclasses.replace(TINY, e_inject=e_inject, e_warp=e_warp, level_convs=level_convs, encoder_convs=encoder_convs)
    ).eval()
    with torch.no_grad():
        model.e_ref.copy_(torch.tensor([0.5, -1.0]))
        if e_inject != "input":
            _randomise_styles(model)
        if e_warp:
            torch.nn.init.normal_(model.generator.warp.weight, std=0.1)
    save_checkpoint(model, tmp_path, card="# card\n", dtype=dtype)
    loaded = load_checkpoint(tmp_path)
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    with torch.no_grad():
        expected, got = model(x), loaded(x)
    tol = 0 if dtype == torch.float32 else 2e-2
    assert torch.allclose(expected, got, atol=tol, rtol=0)
    assert loaded.config == model.config
    assert (tmp_path / "README.md").read_text() == "# card\n"


def test_wrong_shape_names_the_key(tmp_path):
    save_checkpoint(RbVAE(TINY), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["e_dim"] = 4
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"shape mismatch for e_ref"):
        load_checkpoint(tmp_path)


def test_missing_key_is_named(tmp_path):
    from safetensors.torch import load_file, save_file

    save_checkpoint(RbVAE(TINY), tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["e_ref"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing keys: e_ref"):
        load_checkpoint(tmp_path)


def test_folder_without_config_is_clear(tmp_path):
    with pytest.raises(CheckpointError, match="no config.json"):
        load_checkpoint(tmp_path)


def _objective(model, x, z, e):
    """−log p(x|z,e) p(z) p(e) up to a constant: what RbVAE.refine lowers."""
    from rbedit.model.rbvae import LAPLACE_SCALE

    return float((model.decode(z, e) - x).abs().sum() / LAPLACE_SCALE + 0.5 * (z.square().sum() + e.square().sum()))


def test_refine_starts_at_the_means_and_lowers_the_objective_without_touching_the_weights():
    torch.manual_seed(0)
    model = RbVAE(ModelConfig(image_size=8, channels=(4, 4), z_dim=3, e_dim=2)).eval()
    x = torch.rand(6, 3, 8, 8) * 2 - 1
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():  # refine steps with gradients whatever the caller's mode
        means = model.encode_z(x).mu, model.encode_e(x).mu
        z0, e0 = model.refine(x, 0)
        z, e = model.refine(x, 20)
    assert torch.equal(z0, means[0]) and torch.equal(e0, means[1])
    with torch.no_grad():
        assert _objective(model, x, z, e) < 0.98 * _objective(model, x, *means)
    assert not z.requires_grad and not e.requires_grad
    assert all(torch.equal(v, weights[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    # Each image on its own: refining a part gives that part's latents (in float64: in float32,
    # Adam's normalised steps carry the convolutions' batch-dependent rounding, about 1e-3 here).
    model, x = model.double(), x.double()
    assert torch.allclose(model.refine(x[:2], 20)[0], model.refine(x, 20)[0][:2], atol=1e-9)

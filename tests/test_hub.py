"""Model references: embedded, local folder, Hub id from a pre-filled cache (offline), RBEDIT_MODEL."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rbedit import hub
from rbedit.hub import ModelRefError, evaluation_table, list_models, resolve_model

MAIN = "a" * 40
PINNED = "b" * 40


@pytest.fixture
def hub_cache(tmp_path, tiny_model, monkeypatch) -> Path:
    """A Hub cache holding org/tiny at main (MAIN) and at tag v1 (PINNED), used offline."""
    cache = tmp_path / "hf" / "hub"
    repo = cache / "models--org--tiny"
    for commit in (MAIN, PINNED):
        shutil.copytree(tiny_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(MAIN)
    (repo / "refs" / "v1").write_text(PINNED)
    (repo / "snapshots" / PINNED / "marker").write_text("pinned")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_hub_id_from_cache_offline(hub_cache):
    resolved = resolve_model("org/tiny")
    assert resolved.source == "hub" and resolved.folder == hub_cache / "models--org--tiny" / "snapshots" / MAIN
    assert resolved.has_weights


@pytest.mark.parametrize("revision", [PINNED, "v1"])
def test_hub_id_pinned_revision(hub_cache, revision):
    resolved = resolve_model(f"org/tiny@{revision}")
    assert (resolved.folder / "marker").is_file() and resolved.revision == revision


def test_hf_hub_cache_overrides_hf_home(hub_cache, monkeypatch, tmp_path):
    moved = tmp_path / "elsewhere"
    shutil.move(str(hub_cache), moved)
    monkeypatch.setenv("HF_HUB_CACHE", str(moved))
    assert resolve_model("org/tiny").folder.is_relative_to(moved)


def test_offline_and_not_cached_is_a_clear_error(hub_cache):
    with pytest.raises(ModelRefError, match=r"org/missing.*HF_HUB_OFFLINE=1.*rbedit models download"):
        resolve_model("org/missing")


def test_local_folder_and_env_default(tiny_model, monkeypatch, tmp_path):
    assert resolve_model(str(tiny_model)).source == "local"
    monkeypatch.setenv("RBEDIT_MODEL", str(tiny_model))
    assert resolve_model(None).folder == tiny_model.resolve()
    with pytest.raises(ModelRefError, match="unknown model 'nosuchmodel'"):
        resolve_model("nosuchmodel")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelRefError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_embedded_without_weights_is_a_clear_error(monkeypatch, tmp_path):
    root = tmp_path / "models"
    (root / "digits").mkdir(parents=True)
    monkeypatch.setattr(hub, "EMBEDDED_ROOT", root)
    monkeypatch.delenv("RBEDIT_MODEL", raising=False)
    with pytest.raises(ModelRefError, match="embedded model 'digits' has no weights yet.*--model"):
        resolve_model(None)


def test_embedded_model_resolves(monkeypatch, tmp_path, tiny_model):
    root = tmp_path / "models"
    shutil.copytree(tiny_model, root / "digits")
    monkeypatch.setattr(hub, "EMBEDDED_ROOT", root)
    assert resolve_model("digits").source == "embedded"


def test_list_models_sees_cache(hub_cache):
    names = {e.name for e in list_models()}
    assert {"org/tiny", "org/tiny@v1"} <= names


def test_evaluation_table_from_card():
    card = "# m\n\n| not | this |\n|---|---|\n\n## Evaluation\n\ntext\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n## Other\n"
    assert evaluation_table(card) == "| a | b |\n|---|---|\n| 1 | 2 |"
    assert evaluation_table("# m\n\n| x | y |\n|---|---|\n") == "| x | y |\n|---|---|"
    assert evaluation_table("# m\nno tables") is None

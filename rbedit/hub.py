"""Model references: an embedded name, a local folder, or a Hub id ORG/REPO[@REV].

- `digits` (or any folder under rbedit/models/) ships inside the package, so a
  fresh install edits digits with no network;
- a local folder holding config.json + model.safetensors (+ README.md);
- a Hugging Face Hub model repo, optionally pinned to a revision (branch, tag
  or commit), fetched by `huggingface_hub.snapshot_download` into its cache.
  `HF_HUB_OFFLINE`, `HF_HOME` and `HF_HUB_CACHE` are read when a reference is
  resolved (not when huggingface_hub was imported), so they always apply.

`RBEDIT_MODEL` names the default reference. Nothing here imports torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from rbedit import __version__

EMBEDDED_ROOT = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "digits"
MODEL_ENV = "RBEDIT_MODEL"
CONFIG_NAME = "config.json"  # same names as rbedit.checkpoint, which imports torch
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
# Files a release checkpoint consists of; anything else in the repo is not downloaded.
HUB_PATTERNS = [CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, "*.png"]
EMBEDDED_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[\w./-]+))?$")
TRUE_VALUES = {"1", "on", "yes", "true"}


class ModelRefError(ValueError):
    """A model reference names nothing usable."""


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model reference points: a folder on disk, and how it got there."""

    ref: str  # the reference as given
    folder: Path
    source: str  # "embedded", "local" or "hub"
    revision: str | None = None  # hub only: the revision asked for (None = default branch)

    @property
    def has_weights(self) -> bool:
        return (self.folder / WEIGHTS_NAME).is_file()


def default_model_ref() -> str:
    """The reference used when none is given: $RBEDIT_MODEL, else the embedded digits model."""
    return os.environ.get(MODEL_ENV, "").strip() or DEFAULT_MODEL


def embedded_names() -> list[str]:
    """Models shipped inside the package (folders under rbedit/models/)."""
    if not EMBEDDED_ROOT.is_dir():
        return []
    return sorted(p.name for p in EMBEDDED_ROOT.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUE_VALUES


def hub_cache_dir() -> Path:
    """The Hub cache folder as huggingface_hub would compute it from the environment now."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def _check_folder(resolved: ResolvedModel, *, require_weights: bool) -> ResolvedModel:
    folder = resolved.folder
    complete = (folder / CONFIG_NAME).is_file() and resolved.has_weights
    if resolved.source == "embedded" and not complete and (require_weights or not (folder / CONFIG_NAME).is_file()):
        raise ModelRefError(
            f"the embedded model {resolved.ref!r} has no weights yet ({folder} holds no trained checkpoint); "
            f"pass --model DIR or --model ORG/REPO, or set {MODEL_ENV}"
        )
    if not (folder / CONFIG_NAME).is_file():
        raise ModelRefError(f"model {resolved.ref!r}: {folder} has no {CONFIG_NAME}; not an rbedit checkpoint")
    if require_weights and not resolved.has_weights:
        raise ModelRefError(f"model {resolved.ref!r}: {folder} has no {WEIGHTS_NAME}")
    return resolved


def resolve_model(ref: str | os.PathLike | None = None, *, require_weights: bool = True) -> ResolvedModel:
    """Resolve a model reference to a checkpoint folder, downloading from the Hub if needed.

    Order: embedded name, existing local folder, Hub id. `require_weights=False`
    is enough for commands that only read config.json (`rbedit align`).
    """
    ref_str = os.fspath(ref) if ref is not None else default_model_ref()
    if not ref_str:
        raise ModelRefError("empty model reference")
    if EMBEDDED_NAME.match(ref_str) and (EMBEDDED_ROOT / ref_str).is_dir():
        resolved = ResolvedModel(ref_str, EMBEDDED_ROOT / ref_str, "embedded")
        return _check_folder(resolved, require_weights=require_weights)
    local = Path(ref_str).expanduser()
    if local.is_dir():
        return _check_folder(ResolvedModel(ref_str, local.resolve(), "local"), require_weights=require_weights)
    match = HUB_ID.match(ref_str)
    if match and not ref_str.startswith((".", "/", "~")):
        folder = _snapshot(match["repo"], match["revision"], ref_str)
        resolved = ResolvedModel(ref_str, folder, "hub", match["revision"])
        return _check_folder(resolved, require_weights=require_weights)
    if local.exists():
        raise ModelRefError(f"model {ref_str!r} is a file; pass the checkpoint folder that holds {CONFIG_NAME}")
    names = ", ".join(embedded_names()) or "none"
    raise ModelRefError(
        f"unknown model {ref_str!r}: not an embedded model ({names}), not a folder, not a Hub id ORG/REPO[@REV]"
    )


def _snapshot(repo: str, revision: str | None, ref: str) -> Path:
    """Fetch (or find in the cache) the checkpoint files of a Hub model repo."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = hub_offline()
    cache = hub_cache_dir()
    try:
        path = snapshot_download(
            repo,
            revision=revision,
            cache_dir=cache,
            local_files_only=offline,
            allow_patterns=HUB_PATTERNS,
            library_name="rbedit",
            library_version=__version__,
        )
    except RevisionNotFoundError:
        raise ModelRefError(f"model {ref!r}: revision {revision!r} not found on the Hub") from None
    except RepositoryNotFoundError:
        raise ModelRefError(f"model {ref!r}: no such Hub repo (or it is private and no token is set)") from None
    except LocalEntryNotFoundError:
        if offline:
            raise ModelRefError(
                f"model {ref!r} is not in the Hub cache ({cache}) and HF_HUB_OFFLINE=1 forbids downloading; "
                f"run `rbedit models download {ref}` while online"
            ) from None
        raise ModelRefError(f"model {ref!r}: could not reach the Hub and it is not in the cache ({cache})") from None
    except (HfHubHTTPError, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelRefError(f"model {ref!r}: download failed: {first}") from None
    return Path(path)


@dataclass(frozen=True)
class ModelEntry:
    """One row of `rbedit models list`."""

    name: str  # embedded name or ORG/REPO[@REV]
    source: str  # "embedded" or "hub cache"
    folder: Path
    has_weights: bool


def list_models() -> list[ModelEntry]:
    """Embedded models and every rbedit-looking model snapshot in the Hub cache (no network)."""
    entries = [
        ModelEntry(name, "embedded", EMBEDDED_ROOT / name, (EMBEDDED_ROOT / name / WEIGHTS_NAME).is_file())
        for name in embedded_names()
    ]
    cache = hub_cache_dir()
    if cache.is_dir():
        for repo_dir in sorted(cache.glob("models--*")):
            parts = repo_dir.name.split("--")[1:]
            repo_id = "/".join(parts)
            refs = {}
            for ref_file in (repo_dir / "refs").glob("**/*") if (repo_dir / "refs").is_dir() else []:
                if ref_file.is_file():
                    refs[ref_file.read_text().strip()] = ref_file.relative_to(repo_dir / "refs").as_posix()
            for snap in sorted((repo_dir / "snapshots").glob("*")):
                if not (snap / CONFIG_NAME).is_file():
                    continue
                label = refs.get(snap.name)
                name = repo_id if label == "main" else f"{repo_id}@{label or snap.name}"
                entries.append(ModelEntry(name, "hub cache", snap, (snap / WEIGHTS_NAME).is_file()))
    return entries


def read_card(folder: Path) -> str | None:
    """The model card text (README.md) of a checkpoint folder, if any."""
    path = Path(folder) / CARD_NAME
    return path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None


def evaluation_table(card: str) -> str | None:
    """The first Markdown table under a heading that mentions evaluation (else the card's first table)."""
    lines = card.splitlines()
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#") and re.search(r"evaluat|results|metrics", line, re.IGNORECASE):
            table = _first_table(lines[i + 1 :], stop_at_heading=True)
            if table:
                return table
    return _first_table(lines, stop_at_heading=False)


def _first_table(lines: list[str], *, stop_at_heading: bool) -> str | None:
    rows: list[str] = []
    for line in lines:
        text = line.strip()
        if text.startswith("|"):
            rows.append(text)
        elif rows or (stop_at_heading and text.startswith("#")):
            break
    return "\n".join(rows) if len(rows) >= 2 else None

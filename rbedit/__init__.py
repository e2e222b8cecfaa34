"""rbedit: edit faces and digits with reference-based variational autoencoders.

    import rbedit
    editor = rbedit.load("digits")
    styled = editor.transfer("style.png", "digit.png")

The public API is imported lazily, so `import rbedit` (and `rbedit --help`)
does not import torch.
"""

__version__ = "0.1.0"

# name → module that defines it; resolved on first access (PEP 562).
_LAZY = {
    "load": "rbedit.editor",
    "Editor": "rbedit.editor",
    "Latents": "rbedit.editor",
    "resolve_model": "rbedit.hub",
    "ModelConfig": "rbedit.model",
    "read_image": "rbedit.imageio",
    "write_image": "rbedit.imageio",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'rbedit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

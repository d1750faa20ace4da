"""rtdetr-edge: RT-DETRv2 from PyTorch training to verified edge artifacts.

Importing the package imports nothing heavy: the device side (`rtdetr_edge.runtime`, `.bundle`,
`.preprocess`, `.compare`, `.parity` against golden data) runs with numpy, OpenCV and one runtime, without
PyTorch. The model API below loads PyTorch when first used.
"""

__version__ = "0.1.0"

from .errors import UserError  # noqa: E402

_LAZY = {"load_model": "model.checkpoint", "save_checkpoint": "model.checkpoint", "RTDETR": "model.rtdetr",
         "build_model": "model.rtdetr", "VARIANTS": "model.variants"}

__all__ = ["RTDETR", "UserError", "VARIANTS", "build_model", "load_model", "save_checkpoint", "__version__"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

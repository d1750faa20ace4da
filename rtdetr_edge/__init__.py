"""rtdetr-edge: RT-DETRv2 from PyTorch training to verified edge artifacts."""

__version__ = "0.1.0"

from .errors import UserError  # noqa: E402
from .model.checkpoint import load_model, save_checkpoint  # noqa: E402
from .model.rtdetr import RTDETR, build_model  # noqa: E402
from .model.variants import VARIANTS  # noqa: E402

__all__ = ["RTDETR", "UserError", "VARIANTS", "build_model", "load_model", "save_checkpoint", "__version__"]

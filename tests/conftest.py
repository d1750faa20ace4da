import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def r18_small():
    """An r18vd at 128 px with perturbed weights (shared, read-only)."""
    from hf_reference import randomize_
    from rtdetr_edge import build_model

    torch.manual_seed(0)
    return randomize_(build_model("rtdetrv2_r18vd", num_classes=7, imgsz=128)).eval()

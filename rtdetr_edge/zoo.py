"""Models that ship inside the package, selected by name wherever a checkpoint is accepted
(`--weights shapes`, `load_model("shapes")`). Nothing is downloaded: the files are package data.

Each shipped model is one half-precision checkpoint in `rtdetr_edge/weights/` beside a JSON card (class
names, input size, measured metrics, the command that trained it). Listing them needs no PyTorch.
"""

import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED = {"shapes": "shapes_r18vd_320"}  # name -> file stem in WEIGHTS_DIR


def card(name: str) -> dict:
    return json.loads((WEIGHTS_DIR / f"{SHIPPED[name]}.json").read_text())


def shipped_models() -> dict:
    """{name: card} of every shipped model whose file is present."""
    return {name: card(name) for name, stem in SHIPPED.items() if (WEIGHTS_DIR / f"{stem}.pt").is_file()}


def resolve_weights(weights) -> Path:
    """A shipped model's name -> its file; anything else is a path (an existing file of that name wins)."""
    path = Path(weights)
    if str(weights) in SHIPPED and not path.exists():
        return WEIGHTS_DIR / f"{SHIPPED[str(weights)]}.pt"
    return path

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


def write_shipped(checkpoint, name: str, card_fields: dict) -> Path:
    """Store a checkpoint's weights (the EMA weights of a training checkpoint) as a shipped half-precision
    file with its card. Used once per release of a reference model (see benchmarks/reference_model.py)."""
    import torch

    from .fsutil import atomic_path, atomic_write_text
    from .model.checkpoint import META_KEY, load_model

    model = load_model(checkpoint)
    state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu()
             for k, v in model.state_dict().items()}
    stem = SHIPPED[name]
    target = WEIGHTS_DIR / f"{stem}.pt"
    with atomic_path(target) as tmp:
        torch.save({"model": state, META_KEY: {**model.meta(), "shipped": name, "stored_as": "float16"}}, tmp)
    atomic_write_text(WEIGHTS_DIR / f"{stem}.json", json.dumps({"name": name, **model.meta(), **card_fields},
                                                              indent=2))
    return target

"""Our model against the authors' real state_dict layout: key names and shapes recorded from their own
code (lyuwenyu/RT-DETR, `benchmarks/authors_keys.py`), not produced by ours. A checkpoint with exactly
their keys loads strictly, and the variant is inferred from its tensors."""

import json
from pathlib import Path

import pytest
import torch

from rtdetr_edge import build_model, load_model

DATA = Path(__file__).parent / "data"
VARIANTS = ["rtdetrv2_r18vd", "rtdetrv2_r34vd", "rtdetrv2_r50vd_m", "rtdetrv2_r50vd", "rtdetrv2_r101vd"]


def authors_keys(variant):
    return json.loads((DATA / f"authors_keys_{variant}.json").read_text())["keys"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_keys_and_shapes_as_the_authors(variant):
    theirs = authors_keys(variant)
    model = build_model(variant, num_classes=80, imgsz=640)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    ours.update({"decoder.anchors": list(model.decoder.anchors.shape),
                 "decoder.valid_mask": list(model.decoder.valid_mask.shape)})
    ignore = lambda k: k.endswith("num_batches_tracked")  # noqa: E731  (BatchNorm counters)
    assert {k for k in ours if not ignore(k)} == {k for k in theirs if not ignore(k)}
    assert {k: s for k, s in ours.items() if not ignore(k)} == {k: s for k, s in theirs.items() if not ignore(k)}


@pytest.mark.parametrize("variant", ["rtdetrv2_r18vd", "rtdetrv2_r50vd_m"])
def test_a_checkpoint_in_their_layout_loads_and_the_variant_is_inferred(variant, tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(s, generator=g) * 0.02 if s else torch.tensor(0)) for k, s in authors_keys(variant).items()}
    state = {k: (v.long() if k.endswith("num_batches_tracked") else v) for k, v in state.items()}
    path = tmp_path / "theirs.pth"
    torch.save({"ema": {"module": state, "updates": 1}}, path)
    model = load_model(path, imgsz=320)
    assert model.variant == variant and model.num_classes == 80 and model.imgsz == (320, 320)
    loaded = model.state_dict()
    for k in ("decoder.dec_score_head.0.weight", "backbone.conv1.conv1_1.conv.weight"):
        assert torch.equal(loaded[k], state[k])

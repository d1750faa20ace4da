"""Our model against the authors' real checkpoints, as their own code writes them (lyuwenyu/RT-DETR, recorded
by `benchmarks/authors_keys.py` into tests/data): every key with its shape and dtype, and the values of every
buffer their code stores -- `decoder.anchors` with the +inf their `_generate_anchors` writes outside the
valid border, `decoder.valid_mask`, `num_points_scale`, BatchNorm's `num_batches_tracked`. A checkpoint
built from that record is what a real authors' file is: when theirs would be refused, these tests fail."""

import json
import logging
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_runner import run_cli
from rtdetr_edge import UserError, build_model, load_model

DATA = Path(__file__).parent / "data"
VARIANTS = ["rtdetrv2_r18vd", "rtdetrv2_r34vd", "rtdetrv2_r50vd_m", "rtdetrv2_r50vd", "rtdetrv2_r101vd",
            "rtdetrv2_r18vd_sp1", "rtdetrv2_r18vd_sp2", "rtdetrv2_r18vd_sp3"]  # the last: 1-3 sampling points per level


def record(variant):
    return json.loads((DATA / f"authors_keys_{variant}.json").read_text())


def authors_state(variant, seed=0) -> dict:
    """A state_dict as their code writes it: random parameters (their shapes and dtypes) and, for every buffer,
    the values their code stored at the recorded small size."""
    rec = record(variant)
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in rec["keys"].items():
        dtype = getattr(torch, rec["dtypes"][key])
        state[key] = (torch.randn(shape, generator=g) * 0.02).to(dtype) if dtype.is_floating_point \
            else torch.zeros(shape, dtype=dtype)
        if key.endswith("running_var"):  # a variance, as training leaves it
            state[key] = 1 + state[key].abs()
    for key, buf in rec["small"]["buffers"].items():
        state[key] = torch.tensor(buf["values"], dtype=getattr(torch, buf["dtype"])).reshape(buf["shape"])
    return state


def save_authors_checkpoint(variant, path, seed=0) -> dict:
    """Their solver's layout: the EMA model under ema.module (what their release files carry), the trained
    model beside it, and the epoch."""
    state = authors_state(variant, seed)
    torch.save({"model": state, "ema": {"module": state, "updates": 1000}, "last_epoch": 71}, path)
    return state


def test_the_record_holds_what_their_code_writes():
    """The record is the authors' real buffers (so it cannot be a copy of ours): +inf anchors outside the valid
    border, a bool mask, 1/n point scales, int64 BatchNorm counters."""
    rec = record("rtdetrv2_r18vd")
    anchors = np.array(rec["small"]["buffers"]["decoder.anchors"]["values"], dtype=np.float32)
    mask = np.array(rec["small"]["buffers"]["decoder.valid_mask"]["values"], dtype=bool)
    assert np.isinf(anchors).any() and np.isfinite(anchors[mask[..., 0]]).all()
    assert (~mask).any() and mask.any()
    scale = rec["small"]["buffers"]["decoder.decoder.layers.0.cross_attn.num_points_scale"]
    assert scale["dtype"] == "float32" and math.isclose(scale["values"][0], 0.25)
    assert rec["dtypes"]["backbone.conv1.conv1_1.norm.num_batches_tracked"] == "int64"


@pytest.mark.parametrize("variant", VARIANTS)
def test_same_keys_and_shapes_as_the_authors(variant):
    theirs = record(variant)["keys"]
    model = build_model(variant, num_classes=80, imgsz=640)
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    ours.update({"decoder.anchors": list(model.decoder.anchors.shape),
                 "decoder.valid_mask": list(model.decoder.valid_mask.shape)})
    ignore = lambda k: k.endswith("num_batches_tracked")  # noqa: E731  (BatchNorm counters)
    assert {k for k in ours if not ignore(k)} == {k for k in theirs if not ignore(k)}
    assert {k: s for k, s in ours.items() if not ignore(k)} == {k: s for k, s in theirs.items() if not ignore(k)}


@pytest.mark.parametrize("variant", ["rtdetrv2_r18vd", "rtdetrv2_r50vd_m", "rtdetrv2_r18vd_sp1", "rtdetrv2_r18vd_sp3"])
def test_their_checkpoint_loads_and_the_variant_is_inferred(variant, tmp_path, caplog):
    path = tmp_path / "theirs.pth"
    state = save_authors_checkpoint(variant, path)
    assert not torch.isfinite(state["decoder.anchors"]).all()  # the file holds their +inf anchors
    with caplog.at_level(logging.DEBUG, logger="rtdetr_edge"):
        model = load_model(path, imgsz=320)
    assert model.variant == variant and model.num_classes == 80 and model.imgsz == (320, 320)
    assert "decoder.anchors" in caplog.text and "size-dependent" in caplog.text  # said why, in the debug log
    assert torch.isfinite(model.decoder.anchors[model.decoder.valid_mask.expand_as(model.decoder.anchors)]).all()
    loaded = model.state_dict()
    for k in ("decoder.dec_score_head.0.weight", "backbone.conv1.conv1_1.conv.weight",
              "decoder.decoder.layers.0.cross_attn.num_points_scale"):
        assert torch.equal(loaded[k], state[k])


def test_their_checkpoint_starts_training(tmp_path):
    """`train --weights` loads through load_state_into, not load_model: the same keys are ignored there."""
    from rtdetr_edge.model.checkpoint import load_state_into, read_checkpoint

    path = tmp_path / "theirs.pth"
    save_authors_checkpoint("rtdetrv2_r18vd", path)
    state, _, _ = read_checkpoint(path)
    model = build_model("rtdetrv2_r18vd", num_classes=6, imgsz=64)
    reinit = load_state_into(model, state, source=str(path))
    assert "decoder.enc_score_head.weight" in reinit and "decoder.anchors" not in reinit


def test_a_nan_in_a_real_weight_is_still_refused(tmp_path):
    state = authors_state("rtdetrv2_r18vd")
    state["decoder.dec_score_head.2.weight"][0, 0] = float("nan")
    path = tmp_path / "broken.pth"
    torch.save({"ema": {"module": state, "updates": 1}}, path)
    with pytest.raises(UserError, match=r"non-finite weights .*decoder\.dec_score_head\.2\.weight"):
        load_model(path, imgsz=64)
    from rtdetr_edge.model.checkpoint import load_state_into

    with pytest.raises(UserError, match="non-finite"):  # the training path refuses it too
        load_state_into(build_model("rtdetrv2_r18vd", num_classes=80, imgsz=64), state)


def test_their_checkpoint_predicts_and_exports(tmp_path):
    """The user's first steps with a released file: predict with it, export it (ONNX, at a small size)."""
    import cv2

    from rtdetr_edge.export import export

    path = tmp_path / "rtdetrv2_r18vd_120e_coco.pth"
    save_authors_checkpoint("rtdetrv2_r18vd", path)
    image = tmp_path / "street.jpg"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (48, 80, 3), dtype=np.uint8))
    r = run_cli("predict", "--weights", path, "--source", image, "--imgsz", "64", "--conf", "0")
    assert r.returncode == 0, r.stderr
    assert "street.jpg: 300 detections" in r.stdout
    bundle = export(path, "onnx", imgsz=64, simplifier="none", out=tmp_path / "bundle")
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["num_classes"] == 80 and manifest["class_names"][0] == "person"
    r = run_cli("verify", bundle, "--json", tmp_path / "verify.json")
    assert r.returncode == 0, r.stdout + r.stderr

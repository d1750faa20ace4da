import pytest
import torch

from rtdetr_edge import UserError, build_model
from rtdetr_edge.model.rtdetr import count_parameters
from rtdetr_edge.model.variants import parse_imgsz

# published parameter counts with 80 classes (RT-DETRv2 paper / authors' README)
PUBLISHED_M = {"rtdetrv2_r18vd": 20.2, "rtdetrv2_r34vd": 31.4, "rtdetrv2_r50vd_m": 36.6, "rtdetrv2_r50vd": 42.9,
               "rtdetrv2_r101vd": 76.6}


@pytest.mark.parametrize("variant", list(PUBLISHED_M))
def test_parameter_counts(variant):
    with torch.device("meta"):
        model = build_model(variant)
    assert round(count_parameters(model) / 1e6, 1) == PUBLISHED_M[variant]


def test_r50_m_evaluates_third_layer_and_r50_backbones_freeze_norm():
    with torch.device("meta"):
        m = build_model("rtdetrv2_r50vd_m")
    assert m.decoder.decoder.num_layers == 6 and m.decoder.decoder.eval_idx == 2
    assert type(m.backbone.conv1.conv1_1.norm).__name__ == "FrozenBatchNorm2d"
    assert not any(p.requires_grad for p in m.backbone.conv1.parameters())


def test_unknown_variant_lists_known():
    with pytest.raises(UserError, match="rtdetrv2_r18vd"):
        build_model("rtdetrv3_tiny")


@pytest.mark.parametrize("text,expect", [(640, (640, 640)), ("480x640", (480, 640)), ((320, 96), (320, 96)),
                                         ("128", (128, 128))])
def test_parse_imgsz(text, expect):
    assert parse_imgsz(text) == expect


@pytest.mark.parametrize("bad", [100, "480x", "abc", (640,), 0, "64x70", "320x640x3"])
def test_parse_imgsz_rejects(bad):
    with pytest.raises(UserError, match="expected 640 or HEIGHTxWIDTH" if str(bad).count("x") == 2 else ""):
        parse_imgsz(bad)


def test_any_size_multiple_of_32_runs_with_batch():
    model = build_model("rtdetrv2_r18vd", num_classes=3, imgsz=(128, 192)).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, 128, 192))
    assert out["pred_logits"].shape == (3, 300, 3) and out["pred_boxes"].shape == (3, 300, 4)
    assert ((out["pred_boxes"] >= 0) & (out["pred_boxes"] <= 1)).all()

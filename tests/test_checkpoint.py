"""Checkpoints: ours, the authors' layout, variant inference, and every way a file can be bad."""

import pytest
import torch

from rtdetr_edge import UserError, build_model, load_model, save_checkpoint
from rtdetr_edge.model.checkpoint import infer_variant, to_authors_layout
from rtdetr_edge.model.variants import VARIANTS


def _outputs(model, size=(128, 128), seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        return model(torch.rand(1, 3, *size))


def test_round_trip_keeps_weights_and_metadata(r18_small, tmp_path):
    r18_small.class_names = [f"thing{i}" for i in range(7)]
    path = tmp_path / "ours.pt"
    save_checkpoint(r18_small, path)
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.variant == "rtdetrv2_r18vd" and loaded.num_classes == 7 and loaded.imgsz == (128, 128)
    assert loaded.class_names == r18_small.class_names
    a, b = _outputs(r18_small), _outputs(loaded)
    assert torch.equal(a["pred_logits"], b["pred_logits"]) and torch.equal(a["pred_boxes"], b["pred_boxes"])
    assert not list(tmp_path.glob(".*tmp"))  # no temp file left behind


@pytest.mark.parametrize("layout", ["ema", "model"])
def test_authors_layout_loads_and_recomputes_size_buffers(layout, tmp_path):
    torch.manual_seed(0)
    model = build_model("rtdetrv2_r18vd", num_classes=80, imgsz=640).eval()
    ckpt = to_authors_layout(model)  # their key names, anchors/valid_mask made for 640x640
    if layout == "model":
        ckpt = {"model": ckpt["ema"]["module"], "last_epoch": 71}
    assert ckpt.get("ema", {}).get("module", ckpt.get("model"))["decoder.anchors"].shape == (1, 8400, 4)
    path = tmp_path / "rtdetrv2_r18vd_120e_coco.pth"
    torch.save(ckpt, path)
    loaded = load_model(path, imgsz=(96, 160))  # variant and classes inferred from the tensors
    assert loaded.variant == "rtdetrv2_r18vd" and loaded.num_classes == 80
    assert loaded.decoder.anchors.shape == (1, 12 * 20 + 6 * 10 + 3 * 5, 4)
    model.set_imgsz((96, 160))
    a, b = _outputs(model, (96, 160)), _outputs(loaded, (96, 160))
    assert torch.equal(a["pred_logits"], b["pred_logits"])
    assert loaded.class_names[0] == "person"  # 80 classes: COCO's names in the authors' order


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_variant_is_inferred_from_tensors(variant):
    with torch.device("meta"):
        state = build_model(variant).state_dict()
    assert infer_variant(state) == variant


def test_other_num_classes_reinitialises_only_class_tensors(r18_small, tmp_path, caplog):
    path = tmp_path / "seven.pt"
    save_checkpoint(r18_small, path)
    with caplog.at_level("WARNING"):
        model = load_model(path, num_classes=3)
    assert "re-initialised" in caplog.text
    assert model.decoder.enc_score_head.weight.shape[0] == 3
    assert model.decoder.denoising_class_embed.weight.shape[0] == 4
    assert torch.equal(model.decoder.enc_bbox_head.layers[0].weight, r18_small.decoder.enc_bbox_head.layers[0].weight)
    assert torch.equal(model.backbone.conv1.conv1_1.conv.weight, r18_small.backbone.conv1.conv1_1.conv.weight)


def test_missing_and_unexpected_keys_are_named(r18_small, tmp_path):
    state = dict(r18_small.state_dict())
    del state["decoder.query_pos_head.layers.0.weight"]
    state["decoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "bad.pt"
    torch.save({"model": state}, path)
    with pytest.raises(UserError) as e:
        load_model(path)
    msg = str(e.value)
    assert "\n" not in msg and "bad.pt" in msg
    assert "decoder.query_pos_head.layers.0.weight" in msg and "decoder.extra.weight" in msg


def test_wrong_variant_is_refused(r18_small, tmp_path):
    path = tmp_path / "r18.pt"
    save_checkpoint(r18_small, path)
    with pytest.raises(UserError, match="rtdetrv2_r34vd"):
        load_model(path, variant="rtdetrv2_r34vd")


class Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch /tmp/rtdetr_edge_pwned",))


def test_pickle_that_runs_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"x": torch.zeros(1)}, "payload": Evil()}, path)
    with pytest.raises(UserError, match="refused"):
        load_model(path)
    import os
    assert not os.path.exists("/tmp/rtdetr_edge_pwned")


def test_corrupt_and_truncated_files(r18_small, tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(r18_small, good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all" * 10)
    plain = tmp_path / "list.pt"
    torch.save([1, 2, 3], plain)
    for path in (truncated, garbage, plain, tmp_path / "absent.pt"):
        with pytest.raises(UserError) as e:
            load_model(path)
        assert path.name in str(e.value) and "\n" not in str(e.value)

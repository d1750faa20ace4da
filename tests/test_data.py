"""The COCO reader on a messy hand-made dataset, augmentations, and the generated dataset."""

import json

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from rtdetr_edge import UserError
from rtdetr_edge.data.coco import CocoDetection, resolve_coco_dir
from rtdetr_edge.data.synth import generate
from rtdetr_edge.data.transforms import Compose, HFlip, IoUCrop, Resize, Sanitize, ZoomOut, train_transforms


@pytest.fixture
def messy(tmp_path):
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    cv2.imwrite(str(img_dir / "gray.png"), np.full((40, 60), 128, np.uint8))
    rgba = np.zeros((50, 50, 4), np.uint8)
    rgba[..., 2] = 255  # red in BGRA
    rgba[..., 3] = 200
    cv2.imwrite(str(img_dir / "rgba.png"), rgba)
    cv2.imwrite(str(img_dir / "deep.png"), np.full((30, 30, 3), 65535, np.uint16))
    cv2.imwrite(str(img_dir / "empty.jpg"), np.zeros((20, 20, 3), np.uint8))
    data = {
        "images": [
            {"id": 10, "file_name": "gray.png", "width": 60, "height": 40},
            {"id": 11, "file_name": "rgba.png", "width": 50, "height": 50},
            {"id": 12, "file_name": "deep.png", "width": 30, "height": 30},
            {"id": 13, "file_name": "empty.jpg", "width": 20, "height": 20},
            {"id": 14, "file_name": "missing.jpg", "width": 20, "height": 20},
        ],
        "categories": [{"id": 12, "name": "car"}, {"id": 3, "name": "dog"}, {"id": 7, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [10, 5, 20, 10], "area": 200, "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 12, "bbox": [50, 30, 30, 30], "area": 900, "iscrowd": 0},
            {"id": 3, "image_id": 11, "category_id": 3, "bbox": [0, 0, 50, 50], "area": 2500, "iscrowd": 1},
            {"id": 4, "image_id": 11, "category_id": 3, "bbox": [5, 5, 0, 10], "area": 0, "iscrowd": 0},
            {"id": 5, "image_id": 12, "category_id": 3, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0},
        ],
    }
    ann = tmp_path / "instances_messy.json"
    ann.write_text(json.dumps(data))
    return ann, img_dir


def test_messy_dataset_with_skip_bad(messy):
    ann, img_dir = messy
    ds = CocoDetection(ann, img_dir, skip_bad=True)
    assert ds.category_ids == [3, 7, 12] and ds.class_names == ["dog", "cat", "car"]  # sorted by id
    assert len(ds) == 4  # missing image skipped
    assert ds.stats == {"clipped": 1, "dropped_zero_area": 1, "crowd": 1, "missing_images": 1,
                        "unreadable_images": 0, "unknown_category": 0, "non_integer_category_id": 0,
                        "non_finite_box": 0, "unknown_image_id": 0, "duplicate_image_id": 0, "bad_image_size": 0}
    report = ds.report()
    assert "clipped: 1" in report and "crowd: 1" in report and "missing images: 1" in report
    img, t = ds[0]  # gray -> RGB
    assert img.shape == (40, 60, 3) and img.dtype == np.uint8
    assert t["labels"].tolist() == [1, 2]  # cat -> 1, car -> 2
    assert np.allclose(t["boxes"], [[10, 5, 30, 15], [50, 30, 60, 40]])  # second clipped to the image
    img, t = ds[1]  # RGBA -> RGB; crowd and zero-area boxes gone
    assert img.shape == (50, 50, 3) and img[0, 0].tolist() == [255, 0, 0] and len(t["labels"]) == 0
    img, t = ds[2]  # 16-bit -> 8-bit
    assert img.dtype == np.uint8 and img.max() == 255
    img, t = ds[3]  # an image without annotations is kept
    assert len(t["boxes"]) == 0 and t["boxes"].shape == (0, 4)


def test_missing_image_is_an_error_naming_it(messy):
    ann, img_dir = messy
    with pytest.raises(UserError, match="missing.jpg"):
        CocoDetection(ann, img_dir)


def test_unreadable_image_and_malformed_json(messy, tmp_path):
    ann, img_dir = messy
    (img_dir / "missing.jpg").write_bytes(b"not an image")
    ds = CocoDetection(ann, img_dir)
    with pytest.raises(UserError, match="missing.jpg"):
        ds[4]
    bad = tmp_path / "instances_bad.json"
    bad.write_text('{"images": [')
    with pytest.raises(UserError, match="instances_bad.json"):
        CocoDetection(bad, img_dir)


def test_resolves_common_layouts(tmp_path):
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_val2017.json").write_text("{}")
    (tmp_path / "val2017").mkdir()
    ann, images = resolve_coco_dir(tmp_path, "val")
    assert ann.name == "instances_val2017.json" and images.name == "val2017"
    with pytest.raises(UserError, match="instances_train"):
        resolve_coco_dir(tmp_path, "train")


def _marked(h, w, box):
    """Image whose channel 0 is 255 exactly inside `box` (integer xyxy)."""
    img = np.zeros((h, w, 3), np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1, 0] = 255
    return img


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(40, 120), st.integers(40, 120), st.data())
def test_geometric_augmentations_keep_boxes_on_their_pixels(seed, h, w, data):
    x0 = data.draw(st.integers(0, w - 12))
    y0 = data.draw(st.integers(0, h - 12))
    x1 = data.draw(st.integers(x0 + 10, w))
    y1 = data.draw(st.integers(y0 + 10, h))
    img = _marked(h, w, (x0, y0, x1, y1))
    target = {"boxes": np.array([[x0, y0, x1, y1]], np.float32), "labels": np.array([4])}
    chain = Compose([ZoomOut(p=1.0), IoUCrop(p=1.0), Sanitize(1), HFlip(0.5), Resize((64, 96)), Sanitize(1)])
    out, t = chain(img, target, np.random.default_rng(seed))
    assert out.shape == (64, 96, 3)
    ys, xs = np.nonzero(out[..., 0] > 127)
    if len(t["boxes"]) == 0:
        return  # the box left the crop or became too small; then its pixels may be partly gone too
    assert t["labels"].tolist() == [4]
    bx0, by0, bx1, by1 = t["boxes"][0]
    assert len(xs) > 0
    # the box and the marked pixels agree to about a pixel of the (resized) image
    assert abs(xs.min() - bx0) <= 2 and abs(xs.max() + 1 - bx1) <= 2
    assert abs(ys.min() - by0) <= 2 and abs(ys.max() + 1 - by1) <= 2


def test_train_transforms_output_and_stop_epoch():
    img = _marked(100, 80, (10, 20, 50, 60))
    target = {"boxes": np.array([[10, 20, 50, 60]], np.float32), "labels": np.array([1]), "image_id": 1}
    tf = train_transforms((64, 64), stop_epoch=3)
    tf.set_epoch(3)  # strong augmentations off: only flip + resize
    out, t = tf(img, target, np.random.default_rng(0))
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
    cx, cy, bw, bh = t["boxes"][0].tolist()
    assert bw == pytest.approx(0.5) and bh == pytest.approx(0.4) and cy == pytest.approx(0.4)
    assert cx in (pytest.approx(0.375), pytest.approx(0.625))


def test_synth_is_deterministic_and_coco_shaped(tmp_path):
    a = generate(tmp_path / "a", 6, 3, 96, seed=5)
    b = generate(tmp_path / "b", 6, 3, 96, seed=5)
    c = generate(tmp_path / "c", 6, 3, 96, seed=6)
    ja = (a / "annotations" / "instances_train.json").read_text()
    assert ja == (b / "annotations" / "instances_train.json").read_text()
    assert ja != (c / "annotations" / "instances_train.json").read_text()
    assert (a / "train" / "train_000003.jpg").read_bytes() == (b / "train" / "train_000003.jpg").read_bytes()
    ds = CocoDetection(*resolve_coco_dir(a, "train"))
    assert len(ds) == 6 and ds.num_classes == 6
    with pytest.raises(UserError, match="not an empty folder"):
        generate(a, 1, 1, 96)

"""Bad or unusual input a user can cause, across the commands: one clear line naming the file or option,
exit code 2 (1 where a check fails by design), no traceback, nothing half-written at the output path, the
user's own files untouched. Tiny data; the cases run the command line in this process (tests/cli_runner.py:
`main()` as the console script calls it, same exit codes and stderr); test_cli.py runs real subprocesses."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cli_runner import run_cli


def cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "rtdetr_edge.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def coco(root: Path, images, annotations, categories=None, name="instances_val.json"):
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / name).write_text(json.dumps({
        "images": images, "annotations": annotations,
        "categories": categories or [{"id": i + 1, "name": n} for i, n in enumerate("abcdef")]}))  # 6, as the model
    return root


@pytest.fixture(scope="module")
def world(tmp_path_factory, weights, bundles):
    """Files a user might point the commands at: good ones and broken ones."""
    w = tmp_path_factory.mktemp("world")
    (w / "val").mkdir()
    (w / "train").mkdir()
    for i in range(2):
        for split in ("val", "train"):
            cv2.imwrite(str(w / split / f"{i}.jpg"), np.full((64, 64, 3), 90 + 40 * i, np.uint8))
    good = [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 64} for i in range(2)]
    box = {"image_id": 0, "category_id": 1, "bbox": [4, 4, 20, 20], "iscrowd": 0}
    coco(w, good, [dict(box, id=1)])
    coco(w, good, [dict(box, id=1)], name="instances_train.json")
    variants = {
        "nan_boxes": [dict(box, id=1, bbox=[4, 4, float("nan"), 20]), dict(box, id=2, bbox=[4, 4, 1e400, 20])],
        "unknown_image": [dict(box, id=1, image_id=99)],
        "float_category": [dict(box, id=1, category_id=1.5)],
        "no_annotations": [],
    }
    for name, anns in variants.items():
        d = w / name
        shutil.copytree(w / "val", d / "val")
        coco(d, good, anns)
    d = w / "dup_ids"
    shutil.copytree(w / "val", d / "val")
    coco(d, [good[0], dict(good[1], id=0)], [dict(box, id=1)])
    d = w / "string_image_id"  # some converters write "000123": COCO's ids are integers, and evaluation needs them
    shutil.copytree(w / "val", d / "val")
    coco(d, [dict(good[0], id="a"), good[1]], [dict(box, id=1, image_id=1)])
    d = w / "dup_category"
    shutil.copytree(w / "val", d / "val")
    coco(d, good, [dict(box, id=1)],
         categories=[{"id": 1, "name": "a"}] * 2 + [{"id": i, "name": "c"} for i in (3, 4, 5, 6)])
    d = w / "annotation_not_object"
    shutil.copytree(w / "val", d / "val")
    coco(d, good, [dict(box, id=1), "x"])
    d = w / "zero_width"
    shutil.copytree(w / "val", d / "val")
    coco(d, [dict(good[0], width=0), good[1]], [dict(box, id=1), dict(box, id=2, image_id=1)])
    # checkpoints
    (w / "random.pt").write_bytes(os.urandom(4096))
    (w / "dir.pt").mkdir()
    state = torch.load(weights, weights_only=True)
    state["model"] = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                      for k, v in state["model"].items()}
    torch.save(state, w / "nan.pt")
    state = torch.load(weights, weights_only=True)
    state["rtdetr_edge"]["imgsz"] = "big"
    torch.save(state, w / "badmeta.pt")
    # bundles: damaged in different ways
    for name in ("tampered", "edited", "no_golden", "bad_golden"):
        shutil.copytree(bundles["onnx"], w / name)
    with open(w / "tampered" / "model.onnx", "r+b") as f:
        f.seek(1000)
        f.write(b"\x00\x01\x02")
    m = json.loads((w / "edited" / "manifest.json").read_text())
    m["input"]["imgsz"] = [64, 64]
    (w / "edited" / "manifest.json").write_text(json.dumps(m))
    (w / "no_golden" / "golden.npz").unlink()
    (w / "bad_golden" / "golden.npz").write_bytes(os.urandom(2048))  # a damaged copy
    # the user's own folder and file that --force must never delete
    (w / "mine").mkdir()
    (w / "mine" / "thesis.txt").write_text("precious")
    (w / "notes.txt").write_text("precious")
    (w / "calib_missing.txt").write_text("# calibration images\nnope.jpg\n")
    (w / "policy_bad.yaml").write_text("quantize: [backbone, encoder, decoder]\nkeep_float: [decoder.headz]\n")
    (w / "x.jpg").mkdir()  # a folder named like an image
    (w / "run").mkdir()  # a finished training run: a new run there must not replace its best.pt
    shutil.copy(weights, w / "run" / "best.pt")
    shutil.copy(weights, w / "run" / "last.pt")
    (w / "mixed").mkdir()
    cv2.imwrite(str(w / "mixed" / "a.jpg"), np.zeros((32, 32, 3), np.uint8))
    (w / "mixed" / "b.jpg").write_bytes(b"not an image")
    return w


W = "{w}"  # placeholder for the world folder in the table
CASES = [
    # (id, args, exit code, text expected on stderr)
    ("train batch 0", ["train", "--data", W, "--batch", "0", "--imgsz", "64", "--out", "{o}"], 2, "--batch must be >= 1"),
    ("train lr nan", ["train", "--data", W, "--lr", "nan", "--out", "{o}"], 2, "--lr must be a finite number"),
    ("train lr negative", ["train", "--data", W, "--lr", "-1", "--out", "{o}"], 2, "--lr must be > 0"),
    ("train epochs 0", ["train", "--data", W, "--epochs", "0", "--out", "{o}"], 2, "--epochs must be >= 1"),
    ("train unknown variant", ["train", "--data", W, "--model", "rtdetrv3_r18", "--imgsz", "64", "--out", "{o}"], 2,
     "unknown model variant 'rtdetrv3_r18'"),
    ("train weights of another variant", ["train", "--data", W, "--weights", "{weights}", "--model", "rtdetrv2_r34vd",
                                          "--imgsz", "64", "--out", "{o}"], 2, "does not match rtdetrv2_r34vd"),
    ("train time limit -1", ["train", "--data", W, "--time-limit", "-1", "--out", "{o}"], 2, "--time-limit"),
    ("train out is a file", ["train", "--data", W, "--out", W + "/notes.txt"], 2, "notes.txt: exists and is not a folder"),
    ("train onto a finished run", ["train", "--data", W, "--weights", "{weights}", "--imgsz", "64", "--out",
                                   W + "/run"], 2, "run: holds a run (last.pt, best.pt); --resume continues it"),
    ("qat onto a finished run", ["qat", "--data", W, "--weights", "{weights}", "--imgsz", "64", "--out", W + "/run"],
     2, "run: holds a run (last.pt, best.pt); --resume continues it"),
    ("train batch not a number", ["train", "--data", W, "--batch", "abc"], 2, "Invalid value for '--batch'"),
    ("train nan boxes", ["train", "--data", W + "/nan_boxes", "--train-json", W + "/nan_boxes/annotations/instances_val.json",
                         "--val-json", W + "/nan_boxes/annotations/instances_val.json", "--images", W + "/nan_boxes/val",
                         "--imgsz", "64", "--out", "{o}"], 2, "no usable box"),
    ("eval batch 0", ["eval", "--weights", "{weights}", "--data", W, "--batch", "0"], 2, "--batch must be >= 1"),
    ("eval nan boxes", ["eval", "--weights", "{weights}", "--data", W + "/nan_boxes"], 2, "non finite box: 2"),
    ("eval unknown image ids", ["eval", "--weights", "{weights}", "--data", W + "/unknown_image"], 2, "unknown image id: 1"),
    ("eval float category", ["eval", "--weights", "{weights}", "--data", W + "/float_category"], 2,
     "non integer category id: 1"),
    ("eval no annotations", ["eval", "--weights", "{weights}", "--data", W + "/no_annotations"], 2, "no usable box"),
    ("eval duplicate image ids", ["eval", "--weights", "{weights}", "--data", W + "/dup_ids"], 2, "duplicate image id"),
    ("eval string image id", ["eval", "--weights", "{weights}", "--data", W + "/string_image_id"], 2,
     'image entry 1 (of \'images\') needs an integer id, not "a"'),
    ("eval category listed twice", ["eval", "--weights", "{weights}", "--data", W + "/dup_category"], 2,
     "category id 1 is listed more than once"),
    ("eval annotation not an object", ["eval", "--weights", "{weights}", "--data", W + "/annotation_not_object"], 2,
     "annotation entry 2 needs an integer image_id"),
    ("eval width 0", ["eval", "--weights", "{weights}", "--data", W + "/zero_width"], 0, "bad image size: 1"),
    ("eval json is a folder", ["eval", "--weights", "{weights}", "--data", W, "--json", W + "/mine"], 2, "is a folder"),
    ("predict conf 1.5", ["predict", "--weights", "{weights}", "--source", W + "/val", "--conf", "1.5"], 2, "--conf must be <= 1"),
    ("predict conf -1", ["predict", "--weights", "{weights}", "--source", W + "/val", "--conf", "-1"], 2, "--conf must be >= 0"),
    ("predict conf nan", ["predict", "--weights", "{weights}", "--source", W + "/val", "--conf", "nan"], 2, "finite"),
    ("predict save onto a file", ["predict", "--weights", "{weights}", "--source", W + "/val", "--save", W + "/notes.txt"], 2,
     "notes.txt: exists and is not a folder"),
    ("predict folder named x.jpg", ["predict", "--weights", "{weights}", "--source", W + "/x.jpg"], 2, "no images found"),
    ("predict one bad file in a folder", ["predict", "--weights", "{weights}", "--source", W + "/mixed"], 2, "--skip-bad"),
    ("predict imgsz with a bundle", ["predict", "--model", "{onnx}", "--source", W + "/val", "--imgsz", "128"], 2,
     "checkpoints only"),
    ("predict both weights and model", ["predict", "--model", "{onnx}", "--weights", "{weights}", "--source", W + "/val"], 2,
     "exactly one of"),
    ("predict tampered bundle", ["predict", "--model", W + "/tampered", "--source", W + "/val"], 2,
     "model.onnx (differs from its sha256)"),
    ("predict edited manifest", ["predict", "--model", W + "/edited", "--source", W + "/val"], 2, "manifest.json (edited"),
    ("parity missing golden", ["parity", "--model", W + "/no_golden", "--report", "{o}"], 2, "golden.npz (missing)"),
    ("parity unknown tolerance", ["parity", "--model", "{onnx}", "--tol", "foo=1", "--report", "{o}"], 2,
     "unknown tolerance 'foo'"),
    ("parity max images 0", ["parity", "--model", "{onnx}", "--max-images", "0", "--report", "{o}"], 2, "--max-images"),
    ("parity report onto a file", ["parity", "--model", "{onnx}", "--report", W + "/notes.txt"], 2, "not a folder"),
    ("export unknown target", ["export", "--weights", "{weights}", "--target", "jetson-nope", "--out", "{o}"], 2,
     "unknown target 'jetson-nope'"),
    ("export target without that runtime", ["export", "--weights", "{weights}", "--target", "jetson-nano@jp6.2",
                                            "--out", "{o}"], 2, "jetson-nano has no runtime 'jp6.2'"),
    ("export target with '@' and no runtime", ["export", "--weights", "{weights}", "--target", "jetson-nano@",
                                               "--out", "{o}"], 2, "--target jetson-nano@: give a runtime after '@'"),
    ("export unknown simplifier", ["export", "--weights", "{weights}", "--simplifier", "magic", "--out", "{o}"], 2,
     "--simplifier must be one of"),
    ("targets a text file", ["targets", W + "/notes.txt"], 2, "notes.txt: expected a mapping"),
    ("verify damaged golden data", ["verify", W + "/bad_golden", "--json", "{o}"], 2,
     "golden.npz (differs from its sha256): the copy is damaged or was edited"),
    ("verify not a bundle", ["verify", W, "--json", "{o}"], 2, "not a bundle"),
    ("verify engine and outputs", ["verify", "{onnx}", "--engine", W + "/a.engine", "--outputs", W + "/b.json",
                                   "--json", "{o}"], 2, "exclude each other"),
    ("verify outputs missing", ["verify", "{onnx}", "--outputs", W + "/nope.json", "--json", "{o}"], 2,
     "no such file"),
    ("benchmark runs 0", ["benchmark", "--model", "{onnx}", "--runs", "0", "--out", "{o}"], 2, "--runs must be >= 1"),
    ("benchmark block 0", ["benchmark", "--model", "{onnx}", "--block", "0", "--out", "{o}"], 2, "--block must be >= 1"),
    ("benchmark processes -1", ["benchmark", "--model", "{onnx}", "--processes", "-1", "--out", "{o}"], 2,
     "--processes must be >= 0"),
    ("benchmark out onto a file", ["benchmark", "--model", "{onnx}", "--out", W + "/notes.txt"], 2, "not a folder"),
    ("demo conf 2", ["demo", "--model", "{onnx}", "--source", W + "/val", "--conf", "2", "--json", "{o}"], 2,
     "--conf must be <= 1"),
    ("demo no such source", ["demo", "--model", "{onnx}", "--source", W + "/nope.mp4", "--json", "{o}"], 2,
     "no such file or folder"),
    ("demo class index out of range", ["demo", "--model", "{onnx}", "--source", W + "/val", "--classes", "6",
                                       "--json", "{o}"], 2, "--classes: 6 is not a class index of this model (0-5"),
    ("demo json where no file can be made", ["demo", "--model", "{onnx}", "--source", W + "/val", "--json",
                                             "/proc/detections.jsonl"], 2, "--json /proc/detections.jsonl: cannot write there"),
    ("demo save not a video", ["demo", "--model", "{onnx}", "--source", W + "/val", "--save", "{o}"], 2,
     ".mp4 or .avi"),
    ("checkpoint is a folder", ["predict", "--weights", W + "/dir.pt", "--source", W + "/val"], 2, "is a folder"),
    ("checkpoint of random bytes", ["predict", "--weights", W + "/random.pt", "--source", W + "/val"], 2,
     "not a PyTorch file"),
    ("checkpoint of NaN weights", ["predict", "--weights", W + "/nan.pt", "--source", W + "/val"], 2, "non-finite weights"),
    ("checkpoint metadata broken", ["predict", "--weights", W + "/badmeta.pt", "--source", W + "/val"], 2,
     "badmeta.pt: metadata 'imgsz'"),
    ("export force onto a user's folder", ["export", "--weights", "{weights}", "--out", W + "/mine", "--force"], 2,
     "not a bundle of ours"),
    ("export force onto a user's file", ["export", "--weights", "{weights}", "--out", W + "/notes.txt", "--force"], 2,
     "not a bundle of ours"),
    ("export batch with dynamic batch", ["export", "--weights", "{weights}", "--batch", "2", "--dynamic-batch", "--out", "{o}"],
     2, "exclude each other"),
    ("export int8 from FP32 without --calib", ["export", "--weights", "{weights}", "--precision", "int8", "--out", "{o}"],
     2, "post-training quantization: give --calib"),
    ("export int8 calib list with a missing image", ["export", "--weights", "{weights}", "--precision", "int8",
                                                     "--calib", W + "/calib_missing.txt", "--out", "{o}"], 2,
     "calib_missing.txt:2: "),
    ("export int8 unknown calib name", ["export", "--weights", "{weights}", "--precision", "int8", "--calib",
                                        "shapes-999", "--out", "{o}"], 2, "--calib shapes-999: no such list"),
    ("export int8 bad policy group", ["export", "--weights", "{weights}", "--precision", "int8", "--calib", "shapes-16",
                                      "--policy", W + "/policy_bad.yaml", "--out", "{o}"], 2,
     "policy_bad.yaml: keep_float: unknown group 'decoder.headz'"),
    ("export fp32 with --calib", ["export", "--weights", "{weights}", "--calib", "shapes-16", "--out", "{o}"], 2,
     "--calib goes with --precision int8"),
    ("export tflite int8 in the u8s8 form", ["export", "--weights", "{weights}", "--format", "tflite", "--precision",
                                             "int8", "--int8-form", "u8s8", "--out", "{o}"], 2,
     "tflite INT8 comes as static"),
    ("export fp32 with --int8-float", ["export", "--weights", "{weights}", "--format", "openvino", "--int8-float",
                                       "bf16", "--out", "{o}"], 2, "--int8-float goes with --precision int8"),
    ("export onnx int8 with --int8-float", ["export", "--weights", "{weights}", "--precision", "int8", "--calib",
                                            "shapes-16", "--int8-float", "bf16", "--out", "{o}"], 2,
     "--int8-float goes with --format openvino"),
    ("export int8 float f16", ["export", "--weights", "{weights}", "--format", "openvino", "--precision", "int8",
                               "--calib", "shapes-16", "--int8-float", "f16", "--out", "{o}"], 2,
     "--int8-float must be one of f32, bf16, got 'f16'"),
    ("export int8 on a device without int8", ["export", "--weights", "{weights}", "--target", "jetson-nano",
                                              "--precision", "int8", "--out", "{o}"], 2, "int8 is not available on jetson-nano"),
    ("qat without weights", ["qat", "--data", W, "--out", "{o}"], 2, "--weights is required"),
    ("qat bad policy group", ["qat", "--data", W, "--weights", "{weights}", "--policy", W + "/policy_bad.yaml",
                              "--out", "{o}"], 2, "unknown group 'decoder.headz'"),
    ("qat unknown policy", ["qat", "--data", W, "--weights", "{weights}", "--policy", "fastest", "--out", "{o}"], 2,
     "unknown quantization policy 'fastest'"),
    ("qat weight bits 6", ["qat", "--data", W, "--weights", "{weights}", "--weight-bits", "6", "--out", "{o}"], 2,
     "--weight-bits must be 7 or 8, got 6"),
    ("export opset 12", ["export", "--weights", "{weights}", "--opset", "12", "--out", "{o}"], 2, "--opset must be 13..21"),
    ("export opset 13 with GridSample", ["export", "--weights", "{weights}", "--opset", "13", "--out", "{o}"], 2,
     "GridSample needs opset 16"),
    ("init onto an existing file", ["init", "--out", W + "/notes.txt"], 2, "exists; pass --force"),
    ("init onto a folder", ["init", "--out", W + "/mine"], 2, "is a folder"),
    ("init zero classes", ["init", "--out", "{o}", "--num-classes", "0"], 2, "--num-classes must be >= 1"),
    ("quickstart bad formats", ["quickstart", "--out", "{o}", "--formats", "onnx,caffe"], 2, "caffe"),
    ("quickstart negative gate images", ["quickstart", "--out", "{o}", "--gate-images", "-5"], 2,
     "--gate-images must be >= 0, got -5"),
    ("missing required option", ["export"], 2, "Missing option '--weights'"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input(case, world, weights, bundles, tmp_path):
    _, args, code, expect = case
    out = tmp_path / "out"
    subst = {"{w}": str(world), "{o}": str(out), "{weights}": str(weights), "{onnx}": str(bundles["onnx"])}
    argv = []
    for a in args:
        for k, v in subst.items():
            a = a.replace(k, v)
        argv.append(a)
    before = {p: p.stat().st_mtime_ns for p in world.rglob("*") if p.is_file()}
    r = run_cli(*argv)
    assert r.returncode == code, (r.returncode, r.stdout[-1500:], r.stderr[-1500:])
    assert "Traceback" not in r.stderr + r.stdout
    assert expect in r.stderr, r.stderr[-1500:]
    if code == 2:
        lines = [line for line in r.stderr.strip().splitlines() if not line.startswith(("INFO", "WARNING"))]
        assert len(lines) == 1, r.stderr
        assert expect in lines[0], lines[0]
        assert not out.exists()  # nothing half-written
    after = {p: p.stat().st_mtime_ns for p in world.rglob("*") if p.is_file()}
    assert after == before  # the user's files untouched
    assert (world / "mine" / "thesis.txt").read_text() == "precious"


def test_exif_orientation_is_honoured(tmp_path):
    from PIL import Image

    from rtdetr_edge.preprocess import read_image

    img = np.zeros((20, 40, 3), np.uint8)  # stored landscape, 40 wide
    img[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    Image.fromarray(img).save(tmp_path / "phone.jpg", exif=exif.tobytes(), quality=95)
    seen = read_image(tmp_path / "phone.jpg")
    assert seen.shape[:2] == (40, 20)  # portrait, as a viewer shows it
    assert seen[:20, :, 0].mean() > 200 and seen[20:, :, 0].mean() < 60  # the red half is now on top


def test_killed_export_leaves_nothing_and_the_next_run_cleans_up(weights, tmp_path):
    out = tmp_path / "bundle"
    p = subprocess.Popen([sys.executable, "-m", "rtdetr_edge.cli", "export", "--weights", str(weights), "--out", str(out)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.glob(".bundle.*")):
        time.sleep(0.2)
    time.sleep(2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not out.exists()
    stale = list(tmp_path.glob(".bundle.*"))
    assert stale, "the export should have been killed while writing"
    r = cli("export", "--weights", weights, "--out", out)
    assert r.returncode == 0, r.stderr
    assert out.is_dir() and not list(tmp_path.glob(".bundle.*"))

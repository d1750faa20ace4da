"""Training end to end on a tiny generated set: loss falls, checkpoints, exact resume, a kill, evaluation,
COCO metrics against pycocotools, and data-parallel training (gloo, 2 processes on CPU)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rtdetr_edge.data.synth import generate
from rtdetr_edge.model.checkpoint import read_checkpoint
from rtdetr_edge.train.trainer import TrainConfig, Trainer

from conftest import TEST_VARIANT


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("synth") / "data", n_train=8, n_val=4, imgsz=96, seed=3)


def _cfg(data, out, **kw):
    base = dict(data=str(data), model=TEST_VARIANT, epochs=2, batch=4, imgsz=96, out=str(out), workers=0,
                warmup_iters=2, ema_warmups=4, lr=5e-4, seed=1)
    base.update(kw)
    return TrainConfig(**base)


def test_loss_falls_on_a_fixed_batch(tiny_data, tmp_path):
    # the released r18vd, the default (the other tests train the suite's narrow one)
    trainer = Trainer(_cfg(tiny_data, tmp_path / "fixed", model="rtdetrv2_r18vd", strong_aug=False, epochs=1))
    losses = []
    trainer.cfg.max_iters_per_epoch = 1
    for _ in range(12):  # the same first batch again and again (epoch counter held at 0)
        stats = trainer.train_one_epoch()
        losses.append(stats["loss"])
    assert sum(losses[-3:]) / 3 < 0.9 * sum(losses[:3]) / 3, losses


def test_resume_continues_exactly(tiny_data, tmp_path):
    straight = Trainer(_cfg(tiny_data, tmp_path / "straight"))
    straight.fit()
    first = Trainer(_cfg(tiny_data, tmp_path / "split", epochs=1))
    first.fit()
    resumed = Trainer(_cfg(tiny_data, tmp_path / "split", epochs=2, resume=True))
    assert resumed.epoch == 1 and resumed.iteration == first.iteration
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for k in a:
        assert torch.allclose(a[k].float(), b[k].float(), atol=1e-6), k
    ea, eb = straight.ema.module.state_dict(), resumed.ema.module.state_dict()
    assert all(torch.allclose(ea[k].float(), eb[k].float(), atol=1e-6) for k in ea)
    out = tmp_path / "split"
    assert {p.name for p in out.iterdir()} >= {"last.pt", "best.pt", "metrics.csv", "metrics.png"}
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch")
    minutes = [r["minutes"] for r in resumed.history]
    assert minutes[1] > minutes[0] == first.history[0]["minutes"]  # the resumed run's clock goes on
    n = len(resumed.train_data)  # full batches only (drop_last): the x axis of metrics.png
    assert [r["epochs_seen"] for r in resumed.history] == [round(k * (n // 4) * 4 / n, 3) for k in (1, 2)]
    _, meta, ckpt = read_checkpoint(out / "last.pt")
    assert meta["variant"] == TEST_VARIANT and meta["class_names"][0] == "circle" and ckpt["epoch"] == 2


def test_killed_run_leaves_loadable_checkpoint_and_resumes(tiny_data, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "rtdetr_edge.cli", "train", "--data", str(tiny_data), "--epochs", "50",
           "--batch", "4", "--imgsz", "96", "--out", str(out), "--workers", "0", "--warmup-iters", "2",
           "--model", TEST_VARIANT]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not (out / "last.pt").exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)  # kill somewhere in the next epoch (possibly while saving)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    state, _, ckpt = read_checkpoint(out / "last.pt")  # never corrupt
    done = ckpt["epoch"]
    assert done >= 1
    r = subprocess.run(cmd[:-10] + ["--epochs", str(done + 1), "--batch", "4", "--imgsz", "96", "--out", str(out),
                                    "--workers", "0", "--warmup-iters", "2", "--model", TEST_VARIANT, "--resume"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert read_checkpoint(out / "last.pt")[2]["epoch"] == done + 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_eval_cli_agrees_with_pycocotools(tiny_data, tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from rtdetr_edge.data.coco import CocoDetection, resolve_coco_dir
    from rtdetr_edge.data.transforms import eval_transforms
    from rtdetr_edge.model.checkpoint import load_model
    from rtdetr_edge.train.evaluate import coco_eval, predict_dataset

    trainer = Trainer(_cfg(tiny_data, tmp_path / "ev", epochs=1))
    trainer.fit()
    model = load_model(tmp_path / "ev" / "last.pt")
    ann, images = resolve_coco_dir(tiny_data, "val")
    ds = CocoDetection(ann, images, transforms=eval_transforms(model.imgsz))
    dets = predict_dataset(model, ds)
    # a partly trained model scores little; add near-perfect detections so AP values are far from 0
    gt = json.loads(ann.read_text())
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        dets.append({"image_id": a["image_id"], "category_id": a["category_id"], "bbox": [x + 1, y, w, h - 1],
                     "score": 0.9 - 0.01 * (a["id"] % 7)})
    ours = coco_eval(ann, dets, ds.category_ids, ds.class_names)
    coco = COCO(str(ann))
    ev = COCOeval(coco, coco.loadRes(dets), "bbox")
    ev.evaluate(), ev.accumulate(), ev.summarize()
    for i, key in enumerate(["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"]):
        assert ours[key] == pytest.approx(max(ev.stats[i], 0.0), abs=1e-6), key
    assert ours["AP50"] > 0.5
    r = subprocess.run([sys.executable, "-m", "rtdetr_edge.cli", "eval", "--weights", str(tmp_path / "ev" / "last.pt"),
                        "--data", str(tiny_data), "--json", str(tmp_path / "m.json")], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    saved = json.loads((tmp_path / "m.json").read_text())
    assert set(saved["per_class"]) == set(ds.class_names) and "AP50" in saved


def test_data_parallel_two_processes_gloo(tiny_data, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        "29531", "-m", "rtdetr_edge.cli", "train", "--data", str(tiny_data), "--epochs", "1",
                        "--batch", "2", "--imgsz", "96", "--out", str(out), "--workers", "0", "--warmup-iters", "2",
                        "--model", TEST_VARIANT], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    _, _, ckpt = read_checkpoint(out / "last.pt")
    # 8 images, 2 per process, 2 processes: 2 iterations of 4 images
    assert ckpt["iteration"] == 2 and ckpt["epoch"] == 1
    assert (out / "metrics.csv").read_text().count("\n") == 2  # written once, by rank 0


def test_data_parallel_time_limit_is_decided_by_rank_0(tiny_data, tmp_path):
    script = os.path.join(os.path.dirname(__file__), "ddp_skewed_clock.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                        "29533", script, str(tiny_data), str(tmp_path / "ddp")], capture_output=True, text=True,
                       timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    # rank 0's clock says go on: both ranks run the whole epoch (2 iterations) and stop together
    assert "rank 0 stopped at iteration 2" in r.stdout and "rank 1 stopped at iteration 2" in r.stdout

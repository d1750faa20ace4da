"""Files from strangers are data, never instructions: one table per class of attack, each case asserting the
exit code, one line naming the file or field, no traceback, nothing written, the user's files unchanged."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from rtdetr_edge import UserError

GOOD_DEVICE = ("kind: device\nname: my-board\ntitle: My board\nfamily: arm64\nmemory_gb: 2\nprecisions: [fp32]\n"
               "runtimes:\n  tflite: {runtime: tflite-xnnpack, label: TFLite}\ndefault_runtime: tflite\n")
GOOD_RUNTIME = ("kind: runtime\nname: my-trt\nruntime: tensorrt\nversion: '8.6.1'\nformats: [onnx]\nprecisions: [fp32]\n"
                "trtexec: {workspace: '--memPoolSize=workspace:{mb}', build_only: --buildOnly}\n")
GOOD_RECIPE = "kind: recipe\nname: mine\ndevice: jetson-orin-nano\nformat: onnx\nprecision: fp16\nsampling: gather\nopset: 17\n"


def one_line(r, *needles, code=2):
    assert r.returncode == code, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert "Traceback" not in r.stderr and len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


# --- 1. injection into generated scripts, 2. names that become paths, 5. resource bombs: the YAML files ----

HOSTILE_YAML = [
    ("newline in a device title", "d.yaml", GOOD_DEVICE.replace("title: My board", 'title: "x\\nrm -rf ~"'),
     ["d.yaml", "title"]),
    ("quote in a trtexec flag", "rt.yaml", GOOD_RUNTIME.replace("--buildOnly", "\"--buildOnly'; touch /tmp/x; '\""),
     ["rt.yaml", "trtexec.build_only"]),
    ("command in a runtime version", "rt.yaml", GOOD_RUNTIME.replace("'8.6.1'", "'8.6; reboot'"), ["rt.yaml", "version"]),
    ("newline in a runtime label", "d.yaml", GOOD_DEVICE.replace("label: TFLite", 'label: "a\\nb"'),
     ["d.yaml", "runtimes.tflite.label"]),
    ("recipe name that climbs out of exports/", "r.yaml", GOOD_RECIPE.replace("name: mine", "name: /../../../../tmp/x"),
     ["r.yaml", "name"]),
    ("recipe name with a slash", "r.yaml", GOOD_RECIPE.replace("name: mine", "name: a/b"), ["r.yaml", "name"]),
    ("alias bomb", "r.yaml", "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                             "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
     ["r.yaml", "aliases"]),
    ("duplicate key", "r.yaml", GOOD_RECIPE + "precision: fp32\n", ["r.yaml", "line 8", "duplicate key 'precision'"]),
    ("huge file", "r.yaml", GOOD_RECIPE + "# " + "x" * 300_000 + "\n", ["r.yaml", "at most"]),
    ("unbounded workspace", "r.yaml", GOOD_RECIPE + "workspace_mb: 99999999999\n", ["r.yaml", "workspace_mb"]),
    ("unbounded batch", "r.yaml", GOOD_RECIPE + "batch: 100000\n", ["r.yaml", "batch"]),
    ("huge input size", "r.yaml", GOOD_RECIPE + "imgsz: 100000\n", ["r.yaml", "imgsz"]),
    ("too many DLA cores", "d.yaml", GOOD_DEVICE + "dla_cores: 100000\n", ["d.yaml", "dla_cores"]),
]


@pytest.mark.parametrize("name,file,text,needles", HOSTILE_YAML, ids=[c[0] for c in HOSTILE_YAML])
def test_hostile_yaml_is_one_line_and_writes_nothing(name, file, text, needles, tmp_path):
    path = tmp_path / file
    path.write_text(text)
    if "rt.yaml" == file:  # a runtime file is read through a device that names it
        dev = tmp_path / "d.yaml"
        dev.write_text(GOOD_DEVICE.replace("runtime: tflite-xnnpack", "runtime: ./rt.yaml"))
        target = dev
    else:
        target = path
    before = sorted(p.name for p in tmp_path.iterdir())
    start = time.time()
    r = run_cli("targets", target, cwd=tmp_path)
    assert time.time() - start < 10, "a file this size must be refused at once"
    one_line(r, *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


def test_the_policy_and_calibration_readers_refuse_bombs_too(tmp_path):
    from rtdetr_edge.quant.calib import load_calib
    from rtdetr_edge.quant.policy import load_policy

    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("a: &a [x, x]\nb: [*a, *a]\n")
    for load in (load_policy, load_calib):
        with pytest.raises(UserError, match="aliases"):
            load(bomb)


def test_a_target_built_in_code_still_renders_a_safe_script(tmp_path):
    """Even past the schema (a Target made in Python), titles reach only comments and every argument is
    quoted: the script, run by bash, hands trtexec exactly the words it was meant to get and runs nothing
    else."""
    from rtdetr_edge.export.jetson import build_script, trtexec_command
    from rtdetr_edge.targets import resolve

    t = resolve("jetson-orin-nano")
    evil = replace(t, device=t.device.model_copy(update={"title": "board\ntouch pwned-by-title\n"}))
    onnx = "model'; touch pwned-by-name; '.onnx"
    (tmp_path / "build_engine.sh").write_text(build_script(evil, onnx, []))
    fake = tmp_path / "trtexec"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    r = subprocess.run(["bash", str(tmp_path / "build_engine.sh")], capture_output=True, text=True,
                       env={**os.environ, "TRTEXEC": str(fake)}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:-1] == trtexec_command(evil, onnx, [])[1:]
    assert not list(tmp_path.glob("pwned*"))


# --- 3. a bundle that points outside itself, or lies about its fields -------------------------------------

def _bundle(tmp_path) -> Path:
    """A bundle's shape without a model: a file, golden data and a sealed manifest."""
    from rtdetr_edge.bundle import write_manifest

    b = tmp_path / "bundle"
    b.mkdir()
    (b / "model.onnx").write_bytes(b"not a real model")
    np.savez(b / "golden.npz", images=np.zeros((1, 64, 64, 3), np.uint8))
    write_manifest(b, {"format": "onnx", "artifact": "model.onnx", "precision": "fp32",
                       "artifacts": [{"kind": "model", "file": "model.onnx"}], "num_classes": 2,
                       "class_names": ["a", "b"], "input": {"imgsz": [64, 64], "batch": 1}})
    return b


def _edit(bundle, change, reseal=True):
    m = json.loads((bundle / "manifest.json").read_text())
    change(m)
    if reseal and "digest" in m:
        body = {k: v for k, v in m.items() if k != "digest"}
        m["digest"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (bundle / "manifest.json").write_text(json.dumps(m))


HOSTILE_MANIFESTS = [
    ("no digest", lambda m, outside: m.pop("digest"), "digest"),
    ("an absolute artifact", lambda m, outside: m.update(artifact=str(outside)), "artifact"),
    ("an artifact up the tree", lambda m, outside: m["artifacts"][0].update(file="../outside.onnx"), "artifacts.0.file"),
    ("a huge input size", lambda m, outside: m["input"].update(imgsz=[100000, 100000]), "input.imgsz"),
    ("a huge batch", lambda m, outside: m["input"].update(batch=10 ** 9), "input.batch"),
    ("hashes as a list", lambda m, outside: m.update(sha256=["x"]), "sha256"),
    ("class names that do not match", lambda m, outside: m.update(class_names=["a"]), "class_names"),
    ("an unknown format", lambda m, outside: m.update(format="pickle"), "format"),
]


@pytest.mark.parametrize("name,change,field", HOSTILE_MANIFESTS, ids=[c[0] for c in HOSTILE_MANIFESTS])
def test_hostile_manifests_are_refused_naming_the_field(name, change, field, tmp_path):
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"someone else's model")
    bundle = _bundle(tmp_path)
    _edit(bundle, lambda m: change(m, outside))
    for args in (["verify", bundle, "--json", tmp_path / "v.json"], ["predict", "--model", bundle, "--source",
                                                                     tmp_path / "outside.onnx"]):
        r = run_cli(*args)
        one_line(r, "manifest.json", field)
    assert not (tmp_path / "v.json").exists() and outside.read_bytes() == b"someone else's model"


def test_an_artifact_that_is_a_link_out_of_the_bundle_is_refused(tmp_path):
    bundle = _bundle(tmp_path)
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"someone else's model")
    (bundle / "model.onnx").unlink()
    (bundle / "model.onnx").symlink_to(outside)
    r = run_cli("verify", bundle, "--json", tmp_path / "v.json")
    one_line(r, "model.onnx leaves the bundle")


def test_a_pinned_digest_catches_a_rewritten_manifest(tmp_path):
    from rtdetr_edge.bundle import read_manifest

    bundle = _bundle(tmp_path)
    r = run_cli("verify", bundle, "--expect-digest", "abc")
    one_line(r, "--expect-digest")
    pinned = read_manifest(bundle)["digest"]
    _edit(bundle, lambda m: m.update(variant="rewritten"))  # resealed: the digest alone cannot tell
    from rtdetr_edge.bundle import problems

    assert problems(bundle, read_manifest(bundle)) == []
    assert read_manifest(bundle)["digest"] != pinned  # what --expect-digest compares


# --- 4. data loss --------------------------------------------------------------------------------------------

def test_predict_never_draws_over_the_users_photos(tmp_path):
    import cv2

    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(2):
        cv2.imwrite(str(photos / f"p{k}.jpg"), np.full((64, 64, 3), 40 * k, np.uint8))
    before = {p.name: p.read_bytes() for p in photos.iterdir()}
    r = run_cli("predict", "--weights", "shapes", "--source", photos, "--save", photos)
    one_line(r, "--save", "would write over the input")
    assert {p.name: p.read_bytes() for p in photos.iterdir()} == before


def test_a_second_process_on_the_same_output_folder_is_refused(tmp_path):
    from rtdetr_edge.fsutil import atomic_dir, folder_lock

    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from rtdetr_edge.fsutil import folder_lock\n"
                               f"with folder_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(30)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=rf"in use by another rtdetr-edge process \(pid {holder.pid}\)"):
            with folder_lock(out):
                pass
        with pytest.raises(UserError, match="in use"):
            with atomic_dir(out):
                pass
    finally:
        holder.kill()
        holder.wait()
    with atomic_dir(out) as tmp:  # free again once the holder is gone (the kernel drops its lock)
        (tmp / "x").write_text("mine")
    assert (out / "x").read_text() == "mine" and not list(tmp_path.glob(".*lock"))


def test_an_output_that_appears_meanwhile_is_not_replaced(tmp_path):
    from rtdetr_edge.fsutil import atomic_dir

    out = tmp_path / "bundle"
    with pytest.raises(UserError, match="appeared while"):
        with atomic_dir(out) as tmp:
            (tmp / "mine").write_text("new")
            out.mkdir()
            (out / "theirs").write_text("first")
    assert (out / "theirs").read_text() == "first" and not (out / "mine").exists()


def test_the_demo_keeps_its_recording_on_sigterm(weights, tmp_path):
    """systemd, docker stop or a closed ssh send SIGTERM/SIGHUP: the video and the JSON are finished as on
    Ctrl-C. (The suite's checkpoint at 64 px: the signal handling is what is tested, not the network.)"""
    import signal

    import cv2

    from rtdetr_edge.export import export

    model = export(weights, "onnx", imgsz=64, simplifier="none", raw_twin=False, out=tmp_path / "m64")
    frames = tmp_path / "frames"
    frames.mkdir()
    for k in range(1000):
        cv2.imwrite(str(frames / f"{k:04d}.jpg"), np.full((64, 64, 3), k % 255, np.uint8))
    video, js = tmp_path / "rec.avi", tmp_path / "d.jsonl"
    demo = subprocess.Popen([sys.executable, "-m", "rtdetr_edge.cli", "demo", "--model", str(model), "--source",
                             str(frames), "--headless", "--save", str(video), "--json", str(js)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        tmp = list(tmp_path.glob(".d.jsonl.*"))
        if tmp and len(tmp[0].read_text().splitlines()) >= 3:
            break
        time.sleep(0.5)
    demo.send_signal(signal.SIGTERM)
    out, err = demo.communicate(timeout=120)
    assert demo.returncode == 0 and "Traceback" not in err, out + err
    assert "SIGTERM" in out
    lines = js.read_text().splitlines()
    cap = cv2.VideoCapture(str(video))
    assert len(lines) >= 3 and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(lines)
    assert not list(tmp_path.glob(".*rtdetr-tmp*"))


# --- 6. a read-only output folder, in every command that writes --------------------------------------------

READ_ONLY_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
from cli_runner import run_cli
results = {{}}
for name, args in json.loads(open({cases!r}).read()).items():
    r = run_cli(*args)
    results[name] = [r.returncode, r.stderr]
open({out!r}, "w").write(json.dumps(results))
"""


def _can_mount_read_only(tmp_path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    r = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c",
                        f"mount --bind {probe} {probe} && mount -o remount,ro,bind {probe} && touch {probe}/x"],
                       capture_output=True, text=True)
    return "Read-only file system" in r.stderr


def test_a_read_only_output_folder_is_one_line_in_every_command(weights, bundles, tmp_path):
    """A real read-only folder (a read-only bind mount in a private mount namespace: running as root, a chmod
    would not stop us), every command that writes pointed into it: exit 2, one line naming the path, no
    traceback (the temporary file's cleanup used to raise again)."""
    if shutil.which("unshare") is None or not _can_mount_read_only(tmp_path):
        pytest.skip("this machine cannot make a read-only mount (unshare --mount --map-root-user)")
    from rtdetr_edge.data.synth import generate

    data = generate(tmp_path / "data", 4, 2, 128, seed=0)
    image = next((data / "val").glob("*.jpg"))
    ro = tmp_path / "ro"
    ro.mkdir()
    w = str(weights)
    cases = {
        "init": ["init", "--out", ro / "x.pt"],
        "eval": ["eval", "--weights", w, "--data", data, "--json", ro / "m.json"],
        "predict": ["predict", "--weights", w, "--source", image, "--save", ro / "drawn"],
        "demo video": ["demo", "--model", w, "--source", data / "val", "--headless", "--save", ro / "v.avi"],
        "demo json": ["demo", "--model", w, "--source", data / "val", "--headless", "--json", ro / "d.jsonl"],
        "train": ["train", "--data", data, "--weights", w, "--epochs", "1", "--imgsz", "128", "--batch", "2",
                  "--out", ro / "run"],
        "qat": ["qat", "--weights", w, "--data", data, "--epochs", "1", "--imgsz", "128", "--batch", "2",
                "--out", ro / "qat"],
        "export": ["export", "--weights", w, "--format", "onnx", "--out", ro / "bundle"],
        "verify": ["verify", bundles["onnx"], "--json", ro / "v.json"],
        "parity": ["parity", "--model", bundles["onnx"], "--report", ro / "report"],
        "data synth": ["data", "synth", ro / "synth"],
        "benchmark": ["benchmark", "--model", bundles["onnx"], "--runs", "1", "--out", ro / "bench"],
        "quickstart": ["quickstart", "--out", ro / "qs"],
    }
    (tmp_path / "cases.json").write_text(json.dumps({k: [str(a) for a in v] for k, v in cases.items()}))
    script = tmp_path / "run.py"
    script.write_text(READ_ONLY_SCRIPT.format(tests=str(Path(__file__).parent), cases=str(tmp_path / "cases.json"),
                                              out=str(tmp_path / "results.json")))
    r = subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c",
                        f"mount --bind {ro} {ro} && mount -o remount,ro,bind {ro} && exec {sys.executable} {script}"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    for name, (code, stderr) in results.items():
        errors = [line for line in stderr.splitlines() if line.startswith("error:")]  # INFO lines may come first
        assert code == 2 and "Traceback" not in stderr and len(errors) == 1, (name, code, stderr[-2000:])
        assert str(ro) in errors[0] and "read-only" in errors[0].lower(), (name, errors[0])
    assert not list(ro.iterdir())


# --- 7. silent accepts: a run that diverges stops, and keeps the last good checkpoint ----------------------

def test_a_diverging_run_stops_and_keeps_the_last_good_checkpoint(weights, tmp_path):
    """`--lr 1e6` used to keep training (and writing checkpoints) with a finite loss over NaN weights, then die
    in COCO evaluation with a traceback. Now the first non-finite weight or loss stops the run with one line,
    and best.pt is still the last good one."""
    from dataclasses import replace as dc_replace

    from conftest import TEST_VARIANT
    from rtdetr_edge.data.synth import generate
    from rtdetr_edge.train.trainer import TrainConfig, Trainer

    data = generate(tmp_path / "data", 4, 2, 128, seed=0)
    out = tmp_path / "run"
    cfg = TrainConfig(data=str(data), weights=str(weights), epochs=1, batch=2, imgsz=(128, 128), out=str(out),
                      lr=1e-5, warmup_iters=1, workers=0, strong_aug=False)
    trainer = Trainer(cfg)
    assert trainer.model.variant == TEST_VARIANT  # no --model: the variant of --weights
    trainer.fit()
    good = (out / "best.pt").read_bytes()
    trainer.cfg = dc_replace(cfg, epochs=2)
    trainer.base_lrs = [1e6 for _ in trainer.base_lrs]
    with pytest.raises(UserError, match=r"diverged \(lower --lr\); stopped, .*best\.pt stays the last good"):
        trainer.fit()
    assert (out / "best.pt").read_bytes() == good and len(trainer.history) == 1
    # from the command line, with nothing good yet: one line, no checkpoint at all. Its data loader forks two
    # workers, which installs PyTorch's SIGCHLD handler; the run leaves the process's handler as it found it (left
    # in place, a later subprocess call in this process segfaulted it)
    before = signal.getsignal(signal.SIGCHLD)
    r = run_cli("train", "--data", data, "--weights", weights, "--epochs", "2", "--imgsz", "128", "--batch", "2",
                "--lr", "1e6", "--out", tmp_path / "cli", "--no-multi-scale", "--workers", "2")
    assert signal.getsignal(signal.SIGCHLD) is before, signal.getsignal(signal.SIGCHLD)
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]  # after INFO and progress
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(errors) == 1, r.stderr
    assert "diverged" in errors[0] and "no checkpoint was written" in errors[0], errors[0]
    assert not list((tmp_path / "cli").glob("*.pt"))


def test_coco_evaluation_refuses_non_finite_outputs():
    from rtdetr_edge.cocoeval import coco_eval

    with pytest.raises(UserError, match="not finite"):
        coco_eval("unused.json", [{"image_id": 0, "category_id": 1, "bbox": [0, 0, 1, 1], "score": float("nan")}],
                  [1], ["a"])


def test_parity_against_another_model_is_a_fail_row(bundles, tmp_path):
    """A checkpoint of another model (7 classes against the bundle's 6): a FAIL row naming the shapes, exit 1,
    not a ValueError from the comparison."""
    from conftest import random_checkpoint

    random_checkpoint(tmp_path / "w7.pt", seed=3, class_names=list("abcdefg"))
    r = run_cli("parity", "--model", bundles["onnx"], "--weights", tmp_path / "w7.pt", "--report", tmp_path / "rep")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stdout + r.stderr
    report = json.loads((tmp_path / "rep" / "parity.json").read_text())
    row = report["artifacts"][0]
    assert not row["ok"] and "(1, 300, 7) vs (1, 300, 6)" in json.dumps(row)


def test_an_alias_bomb_is_refused_under_a_memory_limit(tmp_path):
    """Six levels of a billion-laughs bomb (9^6 leaves once expanded) in a real process limited to 1 GiB of
    address space: refused in the parser, before anything is expanded."""
    levels = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for k, name in enumerate("bcdef"):
        prev = "abcdef"[k]
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    (tmp_path / "bomb.yaml").write_text("\n".join(levels) + "\n")
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "sys.argv = ['rtdetr-edge', 'targets', 'bomb.yaml']; from rtdetr_edge.cli import main; main()")
    start = time.time()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert time.time() - start < 60
    one_line(r, "bomb.yaml", "aliases")

"""Devices, runtimes and recipes as data; export --target; TensorRT bundles; verify."""

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from rtdetr_edge import targets as T
from rtdetr_edge.errors import UserError

SHIPPED = sorted(p.stem for p in (T.DATA / "recipes").glob("*.yaml"))


def run(*args, cwd=None):
    return run_cli(*args, cwd=cwd)  # in this process, as the console script runs it (tests/cli_runner.py)


def one_line_error(r, *needles, notes=0):
    """Exit 2, no traceback, one error line (after `notes` lines saying which flags overrode the recipe, and
    the note that the recipe was sized for r18vd, not the suite's narrow model)."""
    assert r.returncode == 2, r.stdout + r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if "was sized for rtdetrv2_r18vd" not in line]
    assert "Traceback" not in r.stderr and len(lines) == 1 + notes, r.stderr
    assert all("overrides the recipe" in line for line in lines[:notes]), r.stderr
    for n in needles:
        assert n in r.stderr, r.stderr


def test_every_shipped_file_validates_and_every_recipe_resolves_at_every_runtime():
    checked = T.validate_all()
    assert len([f for f in checked if "/runtimes/" in f]) >= 8
    devices = {p.stem for p in (T.DATA / "devices").glob("*.yaml")}
    assert {"jetson-nano", "jetson-tx2", "jetson-xavier-nx", "jetson-agx-xavier", "jetson-orin-nano",
            "jetson-orin-nx", "jetson-agx-orin", "jetson-thor", "x86-cpu", "raspberry-pi-5", "arm64"} <= devices
    assert set(SHIPPED) == devices  # a recipe per device
    assert T.resolve("jetson").name == "jetson-orin-nano" and T.resolve("cpu").name == "x86-cpu"
    assert T.resolve("jetson-orin-nano@jp5.1").settings["opset"] == 16  # 8.5 parses no LayerNormalization
    assert T.resolve("jetson-orin-nano").runtime.name == "tensorrt-10.3"
    nano = T.resolve("jetson-nano")
    assert nano.runtime.max_opset == 13 and "GridSample" in nano.runtime.unsupported_ops
    assert nano.settings["sampling"] == "gather" and nano.export_settings()["precision"] == "fp32"
    assert nano.precision == "fp16"  # the engine's precision, built on the device


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD_RECIPE = "kind: recipe\nname: mine\ndevice: jetson-orin-nano\nformat: onnx\nprecision: fp16\nsampling: gather\nopset: 17\n"
GOOD_DEVICE = ("kind: device\nname: my-board\ntitle: My board\nfamily: arm64\nmemory_gb: 2\nprecisions: [fp32]\n"
               "runtimes:\n  tflite: {runtime: tflite-xnnpack, label: TFLite}\ndefault_runtime: tflite\n")
GOOD_RUNTIME = ("kind: runtime\nname: my-trt\nruntime: tensorrt\nversion: '8.6.1'\nformats: [onnx]\nprecisions: [fp32]\n"
                "trtexec: {workspace: '--memPoolSize=workspace:{mb}', build_only: --buildOnly}\n")

BROKEN = [
    ("recipe missing key", "r.yaml", GOOD_RECIPE.replace("device: jetson-orin-nano\n", ""), ["r.yaml", "device", "missing"]),
    ("recipe wrong type", "r.yaml", GOOD_RECIPE.replace("opset: 17", "opset: seventeen"), ["r.yaml", "opset"]),
    ("recipe unknown precision", "r.yaml", GOOD_RECIPE.replace("precision: fp16", "precision: fp8"),
     ["r.yaml", "precision", "'fp32'", "'int8'"]),
    ("recipe unknown key", "r.yaml", GOOD_RECIPE + "speed: fast\n", ["r.yaml", "speed", "unknown key", "known:"]),
    # a nested key lists the keys of its own level, not the file's top level
    ("device runtime unknown key", "d.yaml", GOOD_DEVICE.replace("label: TFLite", "label: TFLite, deepstrem: '7.1'"),
     ["d.yaml", "runtimes.tflite.deepstrem", "known: runtime, label, cuda, python, deepstream"]),
    ("recipe override unknown key", "r.yaml", GOOD_RECIPE + "overrides:\n  jp6.2: {opsett: 16}\n",
     ["r.yaml", "overrides.jp6.2.opsett", "known: format, precision"]),
    ("recipe unknown device", "r.yaml", GOOD_RECIPE.replace("jetson-orin-nano", "jetson-nope"),
     ["unknown device 'jetson-nope'", "jetson-nano"]),
    ("recipe precision the device lacks", "r.yaml", GOOD_RECIPE.replace("jetson-orin-nano", "arm64")
     .replace("format: onnx", "format: tflite"), ["r.yaml", "precision", "fp16 is not available on arm64", "fp32"]),
    ("recipe sampling the runtime lacks", "r.yaml", GOOD_RECIPE.replace("jetson-orin-nano", "jetson-nano")
     .replace("gather", "grid_sample").replace("opset: 17", "opset: 13"), ["r.yaml", "sampling", "use gather"]),
    ("recipe int8 form the runtime does not run", "r.yaml",
     GOOD_RECIPE.replace("precision: fp16", "precision: int8") + "int8_form: u8s8\n",
     ["r.yaml", "int8_form", "runs the s8s8 form, not u8s8"]),
    ("recipe unknown policy", "r.yaml", GOOD_RECIPE + "policy: fastest\n", ["r.yaml", "policy", "'fastest'"]),
    ("recipe unknown calibration list", "r.yaml", GOOD_RECIPE + "calib: nope-8\n", ["r.yaml", "calib", "nope-8"]),
    ("recipe unknown int8 form", "r.yaml", GOOD_RECIPE + "int8_form: s4s4\n", ["r.yaml", "int8_form", "'s8s8'"]),
    ("recipe unknown int8 float", "r.yaml", GOOD_RECIPE + "int8_float: f16\n", ["r.yaml", "int8_float", "'bf16'"]),
    ("recipe dla without cores", "r.yaml", GOOD_RECIPE + "dla: true\n", ["r.yaml", "dla", "no DLA"]),
    ("recipe bad tolerance", "r.yaml", GOOD_RECIPE + "tolerances: {score: 1}\n", ["r.yaml", "tolerances", "score"]),
    ("recipe override of no runtime", "r.yaml", GOOD_RECIPE + "overrides:\n  jp9: {opset: 16}\n",
     ["r.yaml", "overrides.jp9"]),
    ("device wrong type", "d.yaml", GOOD_DEVICE.replace("memory_gb: 2", "memory_gb: lots"), ["d.yaml", "memory_gb"]),
    ("device missing key", "d.yaml", GOOD_DEVICE.replace("title: My board\n", ""), ["d.yaml", "title", "missing"]),
    ("device unknown precision", "d.yaml", GOOD_DEVICE.replace("[fp32]", "[fp64]"), ["d.yaml", "precisions.0"]),
    ("device unknown runtime", "d.yaml", GOOD_DEVICE.replace("tflite-xnnpack", "tflite-9"),
     ["unknown runtime 'tflite-9'"]),
    ("device bad default", "d.yaml", GOOD_DEVICE.replace("default_runtime: tflite", "default_runtime: gpu"),
     ["d.yaml", "default_runtime"]),
    ("device pitfall guard", "d.yaml", GOOD_DEVICE + "pitfalls:\n  - {id: x, text: y, guard: pray}\n",
     ["d.yaml", "pitfalls.0.guard"]),
    ("not yaml", "r.yaml", "kind: recipe\nname: [unclosed\n", ["r.yaml", "not valid YAML"]),
    ("no kind", "r.yaml", "name: x\n", ["r.yaml", "kind"]),
]


@pytest.mark.parametrize("case,name,text,needles", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_file_is_one_line_naming_file_and_key(case, name, text, needles, tmp_path):
    path = _write(tmp_path, name, text)
    one_line_error(run_cli("targets", path), *needles)


def test_a_broken_runtime_file_is_one_line(tmp_path):
    _write(tmp_path, "my-trt.yaml", GOOD_RUNTIME.replace("version: '8.6.1'\n", "").replace("[fp32]", "[fp32, half]"))
    dev = _write(tmp_path, "d.yaml", GOOD_DEVICE.replace("tflite-xnnpack", "./my-trt.yaml"))
    one_line_error(run_cli("targets", dev), "my-trt.yaml", "missing")


def test_unknown_target_and_runtime_key_are_one_line(tmp_path):
    one_line_error(run_cli("targets", "jetson-nope"), "unknown target 'jetson-nope'", "jetson-orin-nano")
    one_line_error(run_cli("targets", "jetson-nano@jp6.2"), "jetson-nano has no runtime 'jp6.2'", "jp4.6")
    one_line_error(run("export", "--weights", "w.pt", "--target", "nope"), "unknown target")  # a real process


def test_own_yaml_files_work_where_a_name_does(tmp_path):
    recipe = T.resolve(str(_write(tmp_path, "mine.yaml", GOOD_RECIPE)))
    assert recipe.device.name == "jetson-orin-nano" and recipe.settings["sampling"] == "gather"
    _write(tmp_path, "my-trt.yaml", GOOD_RUNTIME)
    board = T.resolve(str(_write(tmp_path, "my-board.yaml", GOOD_DEVICE.replace("tflite-xnnpack", "./my-trt.yaml")
                                 .replace("family: arm64", "family: jetson").replace("tflite:", "trt:")
                                 .replace("default_runtime: tflite", "default_runtime: trt"))))
    # a device alone gets what its runtime implies: ONNX for TensorRT, GridSample where it parses it
    assert board.export_settings()["format"] == "onnx" and board.settings["sampling"] == "grid_sample"
    r = run("targets", tmp_path / "my-board.yaml")
    assert r.returncode == 0 and "my-trt" in r.stdout
    # an INT8 recipe's float layers reach the export (and only an INT8 export)
    cpu = _write(tmp_path, "cpu8.yaml", "kind: recipe\nname: cpu8\ndevice: x86-cpu\nformat: openvino\nprecision: int8\n"
                 "sampling: grid_sample\nopset: 17\nint8_float: bf16\n")
    assert T.resolve(str(cpu)).export_settings()["int8_float"] == "bf16"


def test_targets_lists_every_target():
    r = run("targets")
    assert r.returncode == 0, r.stderr
    for name in SHIPPED:
        assert name in r.stdout
    r = run("targets", "jetson@jp5.1")
    assert r.returncode == 0 and "tensorrt-8.5" in r.stdout and "layernorm-fp16-overflow" in r.stdout


# --- trtexec flags per TensorRT version: what each version's trtexec accepts (NVIDIA/TensorRT
# samples/common/sampleOptions.cpp on release/8.2, 8.5 and 10.3)
TRTEXEC_FLAGS = {
    "8.2": {"--onnx", "--saveEngine", "--timingCacheFile", "--workspace", "--buildOnly", "--fp16", "--int8",
            "--noTF32", "--precisionConstraints", "--useDLACore", "--allowGPUFallback"},
    "8.5": {"--onnx", "--saveEngine", "--timingCacheFile", "--workspace", "--memPoolSize", "--buildOnly", "--fp16",
            "--int8", "--noTF32", "--precisionConstraints", "--layerPrecisions", "--useDLACore", "--allowGPUFallback"},
    "10": {"--onnx", "--saveEngine", "--timingCacheFile", "--memPoolSize", "--skipInference", "--fp16", "--int8",
           "--minShapes", "--optShapes", "--maxShapes",
           "--noTF32", "--precisionConstraints", "--layerPrecisions", "--useDLACore", "--allowGPUFallback",
           "--builderOptimizationLevel", "--stronglyTyped"},
}
FLAG_CASES = [  # target, settings changed, TensorRT flag set, flags that must be there, flags that must not
    ("jetson-nano", {"precision": "fp32"}, "8.2", {"--workspace=1024", "--buildOnly"}, {"--fp16", "--memPoolSize"}),
    ("jetson-xavier-nx", {}, "8.5", {"--memPoolSize=workspace:2048", "--fp16", "--precisionConstraints=obey",
                                     "--layerPrecisions"}, {"--noTF32", "--workspace"}),  # Xavier has no TF32
    ("jetson-agx-xavier", {"dla": True}, "8.5", {"--useDLACore=0", "--allowGPUFallback"}, set()),
    ("jetson-orin-nano", {}, "10", {"--memPoolSize=workspace:2048", "--skipInference", "--fp16", "--noTF32"},
     {"--workspace", "--buildOnly", "--layerPrecisions"}),  # native LayerNorm at opset 17: no pinned layers
    ("jetson-orin-nano@jp5.1", {}, "8.5", {"--buildOnly", "--noTF32", "--layerPrecisions"}, {"--skipInference"}),
    ("jetson-thor@jp7.1", {"precision": "fp32"}, "10", {"--noTF32", "--skipInference"}, {"--fp16"}),
]


@pytest.mark.parametrize("spec,change,version,must,must_not", FLAG_CASES, ids=[c[0] + str(c[1]) for c in FLAG_CASES])
def test_build_engine_flags_are_those_of_that_tensorrt_version(spec, change, version, must, must_not):
    from rtdetr_edge.export.jetson import trtexec_command

    t = T.resolve(spec)
    t.settings.update(change)
    T.check_target(t)
    layers = ["/model/encoder/encoder.0/layers.0/norm1/Pow"] if t.settings["opset"] < 17 else []
    cmd = trtexec_command(t, "model.onnx", layers)
    flags = {a.split("=")[0] for a in cmd[1:]}
    assert flags <= TRTEXEC_FLAGS[version], flags - TRTEXEC_FLAGS[version]
    for m in must:
        assert any(a == m or a.startswith(m + "=") or (("=" in m) and a == m) for a in cmd), (m, cmd)
    for m in must_not:
        assert not any(a.split("=")[0] == m for a in cmd), (m, cmd)


def test_tensorrt_8_2_without_layer_precisions_builds_through_python():
    from rtdetr_edge.export.jetson import build_script

    script = build_script(T.resolve("jetson-nano"), "model.onnx", ["/model/x/norm1/Pow"])
    assert "exec python3 build_engine.py" in script and "--layerPrecisions=" not in script
    script = build_script(T.resolve("jetson-nano"), "model.onnx", [])
    assert "--workspace=1024" in script and "--memPoolSize" not in script


def test_engine_builder_runs_on_jetpack_pythons():
    src = (Path(T.__file__).parent / "export" / "device_files" / "build_engine.py").read_text()
    ast.parse(src, feature_version=(3, 6))  # JetPack 4.6 ships Python 3.6
    for api in ("build_serialized_network", "set_memory_pool_limit", "OBEY_PRECISION_CONSTRAINTS", "clear_flag"):
        assert api in src


# --- export --target for every shipped target (tiny model)

@pytest.mark.slow
def test_every_shipped_target_exports_a_bundle_that_passes_its_own_check(target_bundles):
    import onnx

    for name, bundle in target_bundles.items():
        m = json.loads((bundle / "manifest.json").read_text())
        t = T.resolve(m["target"]["target"])
        assert m["target"]["recipe"] == name and m["format"] == t.settings["format"]
        # the plan: what the file holds, what the device runs, the tolerances each must meet
        assert m["runtime_precision"] == t.precision and m["tolerances"]["runtime"] == t.tolerances()
        assert m["artifact_precision"] == ("fp32" if t.runtime.runtime == "tensorrt" and t.precision != "int8"
                                           else t.precision) == m["precision"]
        twin = t.settings.get("raw_twin") is not False  # a lean recipe (jetson-nano) leaves the twin out
        assert (bundle / "raw").is_dir() == twin and any(a["kind"] == "raw" for a in m["artifacts"]) == twin, name
        files = ["model.onnx"] + (["raw/model.onnx"] if twin else [])
        if m["format"] == "onnx":
            # the written graphs, read here without the exporter's checker: opset, operators, domains
            for f in files:
                g = onnx.load(str(bundle / f))
                opset = next(o.version for o in g.opset_import if o.domain in ("", "ai.onnx"))
                ops = {n.op_type for n in g.graph.node}
                assert opset == t.settings["opset"] and opset <= (t.runtime.max_opset or 99), (name, f, opset)
                assert not ops & set(t.runtime.unsupported_ops), (name, f, ops & set(t.runtime.unsupported_ops))
                assert all(n.domain in ("", "ai.onnx") for n in g.graph.node), (name, f)
                if "GridSample" in ops and t.runtime.gridsample_max_opset:
                    assert opset <= t.runtime.gridsample_max_opset, (name, f)
                assert ("GridSample" in ops) == (t.settings["sampling"] == "grid_sample"), (name, f)
            check = m["target"]["graph_check"]
            assert check["passed"] is True and set(check["files"]) == set(files)
            rules = check["files"]["model.onnx"]
            assert rules["max_opset"]["applied"] == (t.runtime.max_opset is not None)
            assert rules["unsupported_ops"]["against"] == (sorted(t.runtime.unsupported_ops) or None)
            assert all(r["passed"] and r["violations"] == 0 for r in rules.values())
        else:
            assert m["target"]["graph_check"]["passed"] is None  # said plainly: no graph check for IR/TFLite
        if t.runtime.runtime == "tensorrt":
            for f in ("build_engine.sh", "build_engine.py", "run_golden.sh", "engine_config.json", "README.md",
                      "golden/images.bin", "golden/orig_target_sizes.bin"):
                assert (bundle / f).is_file(), (name, f)
            assert "verify . --engine model.engine" in (bundle / "README.md").read_text() or \
                   "--outputs golden_outputs.json" in (bundle / "README.md").read_text()
    # targets that share an artifact get it converted once and copied, byte for byte, from the sealed bundle
    reused = {name: json.loads((b / "manifest.json").read_text()) for name, b in target_bundles.items()}
    copies = {n: m for n, m in reused.items() if "reused_from" in m["converter"]}
    assert copies, "no two targets shared an artifact"
    for name, m in copies.items():
        source = json.loads((Path(m["converter"]["reused_from"]) / "manifest.json").read_text())
        assert m["sha256"][m["artifact"]] == source["sha256"][source["artifact"]], name
    nano = json.loads((target_bundles["jetson-nano"] / "manifest.json").read_text())["target"]["graph_check"]
    assert nano["opset"] == 13 and not {"GridSample", "LayerNormalization", "Mod", "Xor"} & set(nano["ops"])
    xavier = json.loads((target_bundles["jetson-xavier-nx"] / "manifest.json").read_text())["target"]
    assert "LayerNormalization" not in xavier["graph_check"]["ops"] and xavier["engine"]["fp32_layers"] > 0
    cpu = json.loads((target_bundles["x86-cpu"] / "manifest.json").read_text())["target"]
    assert cpu["export_machine"]["openvino_ran"] in ("f32", "bf16") and "features" in cpu["export_machine"]["cpu"]


@pytest.mark.slow
def test_verify_passes_on_every_target_bundle(target_bundles, tmp_path):
    from rtdetr_edge.verify import verify

    for name, bundle in target_bundles.items():
        report = verify(bundle)
        assert report["ok"], (name, report["broken"])
        if report["raw_twin"]:
            assert report["metrics"]["raw_score_max"] < 1e-2
        else:  # a lean bundle: the top-k outputs are still checked on the device
            assert name == "jetson-nano" and "raw_score_max" not in report["metrics"]
            assert report["metrics"]["top100_match"] == 1.0


def test_a_graph_the_runtime_cannot_parse_is_refused_naming_node_and_fix(weights, tmp_path):
    out = tmp_path / "nano"
    r = run("export", "--weights", weights, "--target", "jetson-nano", "--sampling", "grid_sample", "--opset", "16",
            "--out", out)
    one_line_error(r, "--opset 13", "node /model/decoder/decoder/layers.0/cross_attn", "GridSample is not parsed by "
                   "tensorrt-8.2", "--sampling gather", "nothing was written", notes=2)
    assert not out.exists() and not list(tmp_path.glob(".*rtdetr-tmp"))
    r = run("export", "--weights", weights, "--target", "jetson-orin-nano", "--opset", "20", "--out", out)
    one_line_error(r, "GridSample at opset 20 is read as nearest", "--opset 19", notes=1)
    assert not out.exists()
    r = run("export", "--weights", weights, "--target", "jetson", "--precision", "fp32", "--out", out)
    one_line_error(r, "--precision", "TensorRT target")


def test_overrides_are_said_and_the_simplifier_is_a_choice(weights, tmp_path):
    r = run("export", "--weights", weights, "--target", "jetson-orin-nano", "--sampling", "gather", "--simplifier",
            "onnxslim", "--no-raw-twin", "--out", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert "--sampling gather overrides the recipe's grid_sample" in r.stderr
    assert "--simplifier onnxslim overrides the recipe's onnxsim" in r.stderr
    m = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert m["sampling"] == "gather" and m["converter"]["simplifier"].startswith("onnxslim")
    assert m["target"]["export_settings"]["simplifier"] == "onnxslim"
    # --dynamic-batch replaces the recipe's fixed batch; the engine is built with a shape profile
    r = run("export", "--weights", weights, "--target", "jetson", "--dynamic-batch", "--no-raw-twin", "--out",
            tmp_path / "dyn")
    assert r.returncode == 0, r.stderr
    engine = json.loads((tmp_path / "dyn" / "engine_config.json").read_text())
    manifest = json.loads((tmp_path / "dyn" / "manifest.json").read_text())
    assert manifest["converter"]["simplifier"].startswith("onnxsim ")  # the TensorRT recipes' simplifier
    assert engine["profile"]["max"]["images"][0] == 8 and "--maxShapes=images:8x3x128x128" in \
        (tmp_path / "dyn" / "build_engine.sh").read_text()


@pytest.fixture(scope="session")
def other_model_onnx(tmp_path_factory):
    """An ONNX bundle of another model (different weights, same size and classes)."""
    from conftest import random_checkpoint
    from rtdetr_edge.export import export

    root = tmp_path_factory.mktemp("other")
    return export(random_checkpoint(root / "w.pt", seed=1), "onnx", out=root / "b")


def test_verify_fails_with_exit_1_on_a_swapped_artifact(bundles, other_model_onnx, tmp_path):
    good = tmp_path / "good"
    shutil.copytree(bundles["onnx"], good)
    r = run("verify", good, "--json", tmp_path / "v.json")
    assert r.returncode == 0 and "verified" in r.stdout, r.stdout + r.stderr
    assert json.loads((tmp_path / "v.json").read_text())["ok"]
    shutil.copyfile(other_model_onnx / "model.onnx", good / "model.onnx")
    r = run("verify", good, "--json", tmp_path / "v.json")
    assert r.returncode == 1 and "FAILED" in r.stdout and "Traceback" not in r.stderr, r.stdout + r.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["files"] == ["model.onnx (differs from its sha256)"]
    assert report["metrics"]["top100_match"] < 0.5  # the numbers show it is another model, not only the hash


def _trtexec_json(path, outputs):
    """Outputs in trtexec's --exportOutput format (6 significant digits, as its ostream writes them)."""
    entries = [{"name": n, "dimensions": "x".join(str(d) for d in v.shape),
                "values": [float(f"{x:.6g}") for x in np.asarray(v, dtype=np.float64).ravel()]}
               for n, v in outputs.items()]
    path.write_text(json.dumps(entries))
    return path


def test_verify_checks_outputs_trtexec_wrote_on_the_device(bundles, tmp_path):
    from rtdetr_edge.bundle import golden_inputs, load_golden
    from rtdetr_edge.runtime.base import load_runtime

    golden = load_golden(bundles["onnx"])
    labels, boxes, scores = load_runtime(bundles["onnx"]).infer(*golden_inputs(golden))
    out = _trtexec_json(tmp_path / "golden_outputs.json", {"labels": labels, "boxes": boxes, "scores": scores})
    r = run("verify", bundles["onnx"], "--outputs", out, "--json", tmp_path / "v.json")
    assert r.returncode == 0, r.stdout + r.stderr
    wrong = _trtexec_json(tmp_path / "wrong.json", {"labels": labels, "boxes": boxes[:, ::-1], "scores": scores * 0.9})
    r = run("verify", bundles["onnx"], "--outputs", wrong, "--json", tmp_path / "v.json")
    assert r.returncode == 1 and "FAILED" in r.stdout
    one_line_error(run("verify", bundles["onnx"], "--outputs", tmp_path / "nope.json"), "nope.json", "no such file")
    bad = tmp_path / "bad.json"
    bad.write_text('[{"name": "labels"}]')
    one_line_error(run("verify", bundles["onnx"], "--outputs", bad), "bad.json", "trtexec")


def test_a_dynamic_batch_engine_gets_its_shape_profile_and_dla_refuses_it(tmp_path):
    from rtdetr_edge.export.jetson import trtexec_command

    cmd = trtexec_command(T.resolve("jetson-orin-nano"), "model.onnx", [], (320, 320), dynamic=True)
    shapes = {a.split("=")[0]: a.split("=")[1] for a in cmd if "Shapes=" in a}
    assert shapes == {"--minShapes": "images:1x3x320x320,orig_target_sizes:1x2",
                      "--optShapes": "images:1x3x320x320,orig_target_sizes:1x2",
                      "--maxShapes": "images:8x3x320x320,orig_target_sizes:8x2"}
    assert set(shapes) <= TRTEXEC_FLAGS["10"]
    t = T.resolve("jetson-agx-orin")
    with pytest.raises(UserError, match="DLA builds static shapes only"):
        T.check_target(t, dict(t.settings, dla=True, batch="dynamic"))

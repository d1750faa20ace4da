"""DeepStream, Triton and ROS 2 files in a bundle, checked against the real thing where it exists here:
the C++ parser compiles against DeepStream's own headers (tests/data/deepstream, Apache-2.0) and, loaded as
nvinfer loads it, reproduces the Python post-processing on a bundle's golden outputs; the nvinfer config
uses only keys nvinfer's property parser knows; config.pbtxt parses with Triton's schema (tritonclient's
model_config) and names the exported graph's inputs and outputs with their shapes and types. None of this
has run on a Jetson."""

import ast
import importlib.util
import json
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from cli_runner import run_cli
from rtdetr_edge import UserError

DS = Path(__file__).parent / "data" / "deepstream"
SRC = Path(__file__).parent.parent / "rtdetr_edge" / "integrations" / "device_files"
ONNX_TYPES = {1: "TYPE_FP32", 6: "TYPE_INT32", 7: "TYPE_INT64", 10: "TYPE_FP16"}


@pytest.fixture(scope="module")
def jetson_bundle(weights, tmp_path_factory):
    """A Jetson bundle with every integration, through the command line."""
    out = tmp_path_factory.mktemp("ds") / "bundle"
    r = run_cli("export", "--weights", weights, "--target", "jetson-orin-nano", "--integrations",
                "deepstream,triton,ros2", "--out", out)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """The parser built as the Makefile builds it on the device (headers: DeepStream's; TensorRT's types are
    forward-declared, the parser uses none), and the harness that dlopens it as nvinfer does."""
    out = tmp_path_factory.mktemp("cc")
    flags = ["-O2", "-Wall", "-Wextra", "-Werror", "-std=c++14", "-isystem", str(DS / "include"), "-isystem",
             str(DS / "trt_forward")]
    for cmd in (["g++", *flags, "-fPIC", "-shared", "-o", str(out / "libnvds_rtdetr_parser.so"),
                 str(SRC / "nvdsparsebbox_rtdetr.cpp")],
                ["g++", *flags, "-o", str(out / "harness"), str(DS / "harness.cpp"), "-ldl"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    return out


def _ini(text) -> dict:
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, value = line.split("=", 1)
            assert key not in current, f"duplicate key {key}"
            current[key] = value
    return sections


def nvinfer_keys() -> set:
    """Every key Gst-nvinfer's config parser knows ([property] and [class-attrs-*]), from its own header."""
    return set(re.findall(r'#define CONFIG_GROUP_\w+\s+"([a-z0-9-]+)"',
                          (DS / "gstnvinfer_property_parser.h").read_text()))


def test_the_nvinfer_config_uses_only_keys_nvinfer_knows(jetson_bundle):
    config = _ini((jetson_bundle / "deepstream" / "config_infer_primary_rtdetr.txt").read_text())
    known = nvinfer_keys()
    assert len(known) > 60 and "cluster-mode" in known and "parse-bbox-func-name" in known
    for section in ("property", "class-attrs-all"):
        unknown = set(config[section]) - known
        assert not unknown, f"[{section}] keys nvinfer does not know: {unknown}"
    p = config["property"]
    manifest = json.loads((jetson_bundle / "manifest.json").read_text())
    assert p["cluster-mode"] == "4" and p["maintain-aspect-ratio"] == "0" and p["model-color-format"] == "0"
    assert float(p["net-scale-factor"]) == pytest.approx(1 / 255) and manifest["preprocessing"]["scale"] == "1/255"
    assert p["network-mode"] == "2" and manifest["target"]["precision"] == "fp16"  # the recipe's FP16
    assert p["num-detected-classes"] == str(manifest["num_classes"])
    assert p["infer-dims"] == "3;{};{}".format(*manifest["input"]["imgsz"])
    assert p["output-blob-names"] == "labels;boxes;scores"
    for key in ("onnx-file", "labelfile-path", "custom-lib-path"):
        assert (jetson_bundle / "deepstream" / p[key]).name in {"model.onnx", "labels.txt", "libnvds_rtdetr_parser.so"}
    assert (jetson_bundle / "deepstream" / p["onnx-file"]).resolve() == (jetson_bundle / "model.onnx").resolve()
    labels = (jetson_bundle / "deepstream" / "labels.txt").read_text().splitlines()
    assert labels == manifest["class_names"]
    assert manifest["integrations"]["deepstream"]["deepstream"] == "7.1"  # JetPack 6.2's, from the device file
    # the app config points at this nvinfer config
    app = _ini((jetson_bundle / "deepstream" / "deepstream_app_config.txt").read_text())
    assert app["primary-gie"]["config-file"] == "config_infer_primary_rtdetr.txt"


def test_a_key_nvinfer_does_not_know_is_caught():
    """The key check itself can fail: a misspelt key is not in nvinfer's list."""
    assert "cluster-mod" not in nvinfer_keys() and "pre-cluster-threshold" in nvinfer_keys()


def _run_harness(harness, tmp_path, labels, boxes, scores, width, height, classes, threshold, half=False,
                 int32=False):
    (tmp_path / "labels.bin").write_bytes(labels.astype(np.int32 if int32 else np.int64).tobytes())
    ftype = np.float16 if half else np.float32
    (tmp_path / "boxes.bin").write_bytes(boxes.astype(ftype).tobytes())
    (tmp_path / "scores.bin").write_bytes(scores.astype(ftype).tobytes())
    r = subprocess.run([str(harness / "harness"), str(harness / "libnvds_rtdetr_parser.so"),
                        "NvDsInferParseCustomRTDETR", str(width), str(height), str(classes), repr(float(threshold)),
                        str(len(scores)), "int32" if int32 else "int64", str(tmp_path / "labels.bin"),
                        str(tmp_path / "boxes.bin"), str(tmp_path / "scores.bin"), "half" if half else "float"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    objects = np.array([[float(v) for v in line.split()] for line in lines[:-1]]).reshape(-1, 6)
    return objects, lines[-1]


def _python_objects(labels, boxes, scores, width, height, classes, threshold):
    """The Python post-processing (Detections.filter, as predict and the demo use it), then what nvinfer
    objects are: boxes clamped to the network input, as left/top/width/height, empty ones dropped."""
    from rtdetr_edge.runtime.base import Detections

    det = Detections(labels, boxes, scores).filter(threshold)
    keep = (det.labels >= 0) & (det.labels < classes)
    b = det.boxes[keep].astype(np.float32).copy()
    b[:, 0::2] = np.clip(b[:, 0::2], 0, width)
    b[:, 1::2] = np.clip(b[:, 1::2], 0, height)
    ok = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
    b = b[ok]
    return np.column_stack([det.labels[keep][ok], det.scores[keep][ok], b[:, 0], b[:, 1], b[:, 2] - b[:, 0],
                            b[:, 3] - b[:, 1]]).astype(np.float64)


def test_the_parser_reproduces_the_python_post_processing(jetson_bundle, harness, tmp_path):
    """On the bundle's golden outputs: every class, score and box the Python side keeps, the parser keeps,
    bit for bit in float32; also with FP16 outputs and int32 labels (TensorRT 8.x)."""
    golden = np.load(jetson_bundle / "golden.npz")
    labels, boxes, scores = golden["labels"][0], golden["boxes"][0], golden["scores"][0]
    width, height = (int(v) for v in golden["orig_target_sizes"][0])
    classes = json.loads((jetson_bundle / "manifest.json").read_text())["num_classes"]
    threshold = float(np.median(scores))  # about half the queries pass: both sides of the line are exercised
    boxes = boxes.copy()
    boxes[0] = [-5, -5, width + 7, height + 9]  # one box past the input: clamped on both sides
    objects, sizes = _run_harness(harness, tmp_path, labels, boxes, scores, width, height, classes, threshold)
    expected = _python_objects(labels, boxes, scores, width, height, classes, threshold)
    assert 10 < len(expected) < len(scores)
    np.testing.assert_array_equal(objects[:, 0], expected[:, 0])
    np.testing.assert_array_equal(objects[:, 1:].astype(np.float32), expected[:, 1:].astype(np.float32))
    assert sizes == f"sizes {width} {height} {width} {height} {width} {height}"  # orig_target_sizes, batch 3
    # FP16 outputs (an engine whose outputs stayed half) and int32 labels (TensorRT 8.x)
    h_boxes, h_scores = boxes.astype(np.float16), scores.astype(np.float16)
    objects, _ = _run_harness(harness, tmp_path, labels, h_boxes, h_scores, width, height, classes, threshold,
                              half=True, int32=True)
    expected = _python_objects(labels, h_boxes.astype(np.float32), h_scores.astype(np.float32), width, height,
                               classes, threshold)
    np.testing.assert_array_equal(objects.astype(np.float32), expected.astype(np.float32))


def test_the_makefile_builds_the_library_nvinfer_loads(jetson_bundle, tmp_path):
    """The bundle's own Makefile, pointed at DeepStream's headers as they sit on a device."""
    ds = tmp_path / "deepstream"
    (ds / "sources").mkdir(parents=True)
    shutil.copytree(DS / "include", ds / "sources" / "includes")
    for f in (DS / "trt_forward").iterdir():
        shutil.copy(f, ds / "sources" / "includes" / f.name)
    work = tmp_path / "build"
    shutil.copytree(jetson_bundle / "deepstream", work)
    r = subprocess.run(["make", f"DS_PATH={ds}", f"CUDA_PATH={tmp_path}"], cwd=work, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(work / "libnvds_rtdetr_parser.so")],
                             capture_output=True, text=True).stdout
    assert "NvDsInferParseCustomRTDETR" in symbols and "NvDsInferInitializeInputLayers" in symbols


def model_config_pb2():
    """Triton's own schema: tritonclient's generated model_config module (loaded by path: the package's grpc
    __init__ wants grpcio, which the schema does not need)."""
    path = Path(metadata.distribution("tritonclient").locate_file("tritonclient/grpc/model_config_pb2.py"))
    spec = importlib.util.spec_from_file_location("model_config_pb2", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _parse_pbtxt(path):
    from google.protobuf import text_format

    return text_format.Parse(Path(path).read_text(), model_config_pb2().ModelConfig())


def _graph_io(onnx_path) -> dict:
    import onnx

    g = onnx.load(str(onnx_path), load_external_data=False).graph
    out = {}
    for v in list(g.input) + list(g.output):
        t = v.type.tensor_type
        out[v.name] = (ONNX_TYPES[t.elem_type], [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim])
    return out


def _assert_matches_graph(config, io, dynamic):
    mc = model_config_pb2()
    seen = {}
    for t in list(config.input) + list(config.output):
        dims = list(t.dims)
        seen[t.name] = (mc.DataType.Name(t.data_type), dims)
    assert set(seen) == set(io)
    for name, (dtype, shape) in io.items():
        assert seen[name][0] == dtype, (name, seen[name], dtype)
        assert seen[name][1] == (shape[1:] if dynamic else shape), (name, seen[name], shape)


def test_triton_config_parses_and_names_the_graph(jetson_bundle, bundles, tmp_path):
    # the Jetson bundle: a TensorRT plan, fixed batch (dims with the batch), TensorRT 10 keeps int64
    config = _parse_pbtxt(jetson_bundle / "triton" / "model_repository" / "rtdetr" / "config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 0
    _assert_matches_graph(config, _graph_io(jetson_bundle / "model.onnx"), dynamic=False)
    # a dynamic-batch ONNX bundle: onnxruntime backend, max_batch_size, dims without the batch axis
    from rtdetr_edge.bundle import read_manifest
    from rtdetr_edge.integrations import _model_info
    from rtdetr_edge.integrations.triton import config_pbtxt

    b = bundles["onnx_gather"]
    info = _model_info(read_manifest(b), np.load(b / "golden.npz"), None)
    (tmp_path / "c.pbtxt").write_text(config_pbtxt(info))
    config = _parse_pbtxt(tmp_path / "c.pbtxt")
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 8 and config.HasField("dynamic_batching")
    _assert_matches_graph(config, _graph_io(b / "model.onnx"), dynamic=True)


def test_triton_config_for_an_openvino_ir_names_the_ir(bundles, tmp_path):
    import openvino as ov

    from rtdetr_edge.bundle import read_manifest
    from rtdetr_edge.integrations import _model_info
    from rtdetr_edge.integrations.triton import config_pbtxt

    b = bundles["openvino"]  # batch 2, fixed
    m = read_manifest(b)
    (tmp_path / "c.pbtxt").write_text(config_pbtxt(_model_info(m, np.load(b / "golden.npz"), None)))
    config = _parse_pbtxt(tmp_path / "c.pbtxt")
    assert config.backend == "openvino" and config.max_batch_size == 0
    model = ov.Core().read_model(b / m["artifact"])
    types = {"f32": "TYPE_FP32", "i64": "TYPE_INT64", "i32": "TYPE_INT32"}
    io = {p.get_any_name(): (types[p.get_element_type().get_type_name()], list(p.get_shape()))
          for p in list(model.inputs) + list(model.outputs)}
    _assert_matches_graph(config, io, dynamic=False)


def test_fill_repository_links_the_model_and_waits_for_the_engine(jetson_bundle, bundles, tmp_path):
    from rtdetr_edge.bundle import read_manifest
    from rtdetr_edge.integrations import _model_info
    from rtdetr_edge.integrations.triton import fill_script

    copy = tmp_path / "jb"
    shutil.copytree(jetson_bundle, copy)
    r = subprocess.run(["bash", str(copy / "triton" / "fill_repository.sh")], capture_output=True, text=True)
    assert r.returncode == 1 and "build the engine first" in r.stderr  # no engine yet on this machine
    (copy / "model.engine").write_bytes(b"engine bytes")
    r = subprocess.run(["bash", str(copy / "triton" / "fill_repository.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    plan = copy / "triton" / "model_repository" / "rtdetr" / "1" / "model.plan"
    assert plan.read_bytes() == b"engine bytes" and plan.stat().st_ino == (copy / "model.engine").stat().st_ino
    # an OpenVINO bundle: the IR's two files
    b = tmp_path / "ov"
    shutil.copytree(bundles["openvino"], b)
    (b / "triton").mkdir()
    (b / "triton" / "fill_repository.sh").write_text(fill_script(_model_info(read_manifest(b), np.load(b / "golden.npz"), None)))
    r = subprocess.run(["bash", str(b / "triton" / "fill_repository.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (b / "triton" / "model_repository" / "rtdetr" / "1").iterdir()) == ["model.bin",
                                                                                                      "model.xml"]


def test_ros2_launch_file_names_the_bundle(jetson_bundle):
    text = (jetson_bundle / "ros2" / "rtdetr_edge.launch.py").read_text()
    tree = ast.parse(text)  # valid Python
    consts = {t.targets[0].id: t.value for t in tree.body if isinstance(t, ast.Assign) and isinstance(t.targets[0], ast.Name)}
    manifest = json.loads((jetson_bundle / "manifest.json").read_text())
    assert ast.literal_eval(consts["MODEL_SIZE"]) == manifest["input"]["imgsz"][0]
    io = _graph_io(jetson_bundle / "model.onnx")
    assert list(ast.literal_eval(consts["INPUT_NAMES"])) + list(ast.literal_eval(consts["OUTPUT_NAMES"])) == list(io)
    assert "'model.onnx'" in ast.unparse(consts["MODEL_FILE"]) and "'model.engine'" in ast.unparse(consts["ENGINE_FILE"])
    assert "isaac_ros_rtdetr" in text and "RtDetrDecoderNode" in text


def test_bundle_manifest_seals_the_integration_files(jetson_bundle):
    from rtdetr_edge.bundle import problems, read_manifest

    manifest = json.loads((jetson_bundle / "manifest.json").read_text())
    for f in ("deepstream/config_infer_primary_rtdetr.txt", "deepstream/nvdsparsebbox_rtdetr.cpp",
              "triton/model_repository/rtdetr/config.pbtxt", "ros2/rtdetr_edge.launch.py"):
        assert f in manifest["sha256"]
    assert set(manifest["integrations"]) == {"deepstream", "triton", "ros2"}
    assert not any(v.get("checked_on_device") for v in manifest["integrations"].values())
    assert problems(jetson_bundle, read_manifest(jetson_bundle)) == []


REFUSALS = [
    (["--target", "x86-cpu", "--integrations", "deepstream"], "needs a TensorRT target"),
    (["--target", "raspberry-pi-5", "--integrations", "triton"], "no TFLite backend"),
    (["--format", "onnx", "--integrations", "ros2"], "give --target with a Jetson"),
    (["--target", "jetson-orin-nano", "--integrations", "deepstream,kubernetes"], "unknown 'kubernetes'"),
    (["--target", "jetson-orin-nano", "--integrations", "ros2", "--imgsz", "128x160"], "letterboxes to a square"),
]


@pytest.mark.parametrize("args,needle", REFUSALS, ids=[r[1] for r in REFUSALS])
def test_integrations_that_cannot_work_are_refused(args, needle, weights, tmp_path):
    r = run_cli("export", "--weights", weights, *args, "--out", tmp_path / "b")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and needle in errors[0], r.stderr
    assert not (tmp_path / "b").exists()


def test_class_names_that_would_break_a_labels_file_are_refused():
    from rtdetr_edge.integrations import safe_class_names

    assert safe_class_names(["person", "fork lift"]) == ["person", "fork lift"]
    for bad in (["a\nb"], ["tab\there"], [""], [7]):
        with pytest.raises(UserError, match=r"class_names\[0\]"):
            safe_class_names(bad)


def test_a_lean_bundle_is_half_the_size_and_still_verifies(jetson_bundle, weights, tmp_path):
    """--no-raw-twin (the jetson-nano recipe's choice): no second network in the bundle; verify still runs
    the top-k parity on the device and says that pre-top-k was not checked."""
    r = run_cli("export", "--weights", weights, "--target", "jetson-orin-nano", "--no-raw-twin", "--out",
                tmp_path / "lean")
    assert r.returncode == 0 and "no raw twin" in r.stdout, r.stdout + r.stderr

    def size(folder):
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())

    full, lean = size(jetson_bundle), size(tmp_path / "lean")
    assert not (tmp_path / "lean" / "raw").exists() and lean < 0.55 * full, (lean, full)
    r = run_cli("verify", tmp_path / "lean", "--json", tmp_path / "v.json")
    assert r.returncode == 0 and "before top-k: not checked here" in r.stdout, r.stdout + r.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["raw_twin"] is False and report["metrics"]["top100_match"] == 1.0

"""Export to ONNX, OpenVINO and TFLite; bundles; runtimes; parity (random weights already show numerical
parity). Tiny sizes: the narrow r18vd at 96-128 px."""

import json

import numpy as np
import onnx
import pytest

from cli_runner import run_cli
from rtdetr_edge import UserError
from rtdetr_edge.export import export
from rtdetr_edge.parity import parity
from rtdetr_edge.runtime import load_runtime


def cli(*args):
    return run_cli(*args)  # in this process, as the console script runs it (tests/cli_runner.py)


def test_onnx_bundle_has_the_authors_interface(bundles):
    b = bundles["onnx"]
    assert {p.name for p in b.iterdir()} == {"model.onnx", "raw", "manifest.json", "golden.npz"}
    manifest = json.loads((b / "manifest.json").read_text())
    assert manifest["format"] == "onnx" and manifest["precision"] == "fp32" and manifest["sampling"] == "grid_sample"
    assert manifest["class_names"][0] == "circle" and manifest["input"]["imgsz"] == [128, 128]
    assert set(manifest["sha256"]) == {"model.onnx", "raw/model.onnx", "golden.npz"}
    assert "torch" in manifest["versions"]
    kinds = {a["kind"]: a for a in manifest["artifacts"]}
    assert kinds["model"]["file"] == "model.onnx" and kinds["raw"]["file"] == "raw/model.onnx"
    assert kinds["model"]["produced_by"]["opset"] == 17 and kinds["model"]["precision"] == "fp32"
    raw = onnx.load(str(b / "raw" / "model.onnx"))
    assert [i.name for i in raw.graph.input] == ["images"]
    assert [o.name for o in raw.graph.output] == ["pred_scores", "pred_boxes"]
    model = onnx.load(str(b / "model.onnx"))
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == 17
    assert [i.name for i in model.graph.input] == ["images", "orig_target_sizes"]
    assert [o.name for o in model.graph.output] == ["labels", "boxes", "scores"]
    assert "GridSample" in {n.op_type for n in model.graph.node}


def value_sources(graph, through) -> list:
    """The node each GridSample of an ONNX graph reads its values from, past the op types in `through`."""
    producer = {o: n for n in graph.node for o in n.output}
    sources = []
    for n in graph.node:
        if n.op_type == "GridSample":
            src = producer[n.input[0]]
            while src.op_type in through:
                src = producer[src.input[0]]
            sources.append(src)
    assert sources
    return sources


def test_grid_sample_reads_the_value_projection_without_a_transpose(bundles):
    """The decoder's value projection runs as a 1x1 convolution on each level's channel-first map, so what
    GridSample reads comes from it through reshapes only: no transpose of the 8,400 x 256 values per decoder
    layer (OpenVINO ran those with a reference kernel: docs/int8_profile.md)."""
    graph = onnx.load(str(bundles["onnx"] / "model.onnx")).graph
    samplers = [n for n in graph.node if n.op_type == "GridSample"]
    for src in value_sources(graph, ("Reshape", "Identity", "Split", "Slice")):
        assert src.op_type == "Conv" and "cross_attn" in src.name, (src.op_type, src.name)
    # each level's samples are weighted and summed apart: no Concat of all levels' samples (OpenVINO ran it
    # with its reference kernel, 0.5-0.9 ms per decoder layer at 640)
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    for n in samplers:
        assert all(c.op_type == "Mul" for c in consumers[n.output[0]]), [c.op_type for c in consumers[n.output[0]]]
    # with as many points on every level, the levels' weighted samples are added and summed over the points
    # once per decoder layer: a reduction over a last axis of 4 is what costs, not the adds
    layers = {n.name.split("/cross_attn/")[0] for n in samplers}
    sums = [n for n in graph.node if n.op_type == "ReduceSum" and "/cross_attn/" in n.name]
    assert len(sums) == len(layers), [n.name for n in sums]


def grid_sample_sources(xml) -> list:
    """What each GridSample of an OpenVINO file reads, once OpenVINO compiled it for this CPU: the layer type
    behind any reshapes ('Reorder' when OpenVINO converts the values' layout first)."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def kind(node):
        return node.get_rt_info()["layerType"].astype(str)

    sources = []
    for op in compiled.get_runtime_model().get_ops():
        if kind(op) == "GridSample":
            src = op.input_value(0).get_node()
            while kind(src) == "Reshape":
                src = src.input_value(0).get_node()
            sources.append(kind(src))
    return sources


def test_openvino_grid_sample_reads_the_value_projection_without_a_reorder(bundles):
    """In the OpenVINO file the value projection is a matrix product (W @ X on each level's flattened map),
    whose output is planar: OpenVINO's GridSample reads it without a reorder. As a 1x1 convolution (the ONNX
    file's form) OpenVINO wrote it blocked or channel-last and reordered all values per decoder layer
    (docs/int8.md). The manifest says which form the file holds."""
    import openvino as ov

    b = bundles["openvino"]
    ir = ov.Core().read_model(str(b / "model.xml"))
    for op in ir.get_ops():
        if op.get_type_name() == "GridSample":
            src = op.input_value(0).get_node()
            while src.get_type_name() in ("Reshape", "Add"):
                src = src.input_value(0).get_node()
            assert src.get_type_name() == "MatMul" and "cross_attn" in src.get_friendly_name(), src.get_type_name()
            assert src.input_value(0).get_node().get_type_name() == "Constant"  # the weight, W @ X
    sources = grid_sample_sources(b / "model.xml")
    assert sources and "Reorder" not in sources, sources
    assert json.loads((b / "manifest.json").read_text())["artifacts"][0]["value_projection"] == "matmul"
    assert json.loads((bundles["onnx"] / "manifest.json").read_text())["artifacts"][0]["value_projection"] == "conv"


def test_the_encoders_box_head_runs_on_the_selected_tokens_only(bundles):
    """The box head is per token: it runs on the k selected tokens (a GatherElements of the top-k first), not on
    all of them (8,400 at 640; 1.1 GMAC of its 3-layer MLP per image)."""
    graph = onnx.load(str(bundles["onnx"] / "model.onnx")).graph
    producer = {o: n for n in graph.node for o in n.output}
    first = [n for n in graph.node if "enc_bbox_head/layers.0" in n.name and n.op_type in ("MatMul", "Gemm")]
    assert len(first) == 1
    src = producer[first[0].input[0]]
    while src.op_type in ("Reshape", "Flatten"):
        src = producer[src.input[0]]
    assert src.op_type in ("GatherElements", "Gather"), (src.op_type, src.name)


def test_the_encoder_output_tokens_come_from_channel_last_maps(bundles):
    """Each level's map becomes tokens by a transpose to channel-last, then a reshape; the tokens of all levels
    are not transposed after the Concat (onnxruntime's int8 convolutions write channel-last maps: its layout
    pass then cancels the transpose against its own one back, 4 transposes fewer, 8,400 x 256 values each)."""
    graph = onnx.load(str(bundles["onnx"] / "model.onnx")).graph
    producer = {o: n for n in graph.node for o in n.output}
    readers = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)

    def path_to_conv(name):
        ops, n = [], producer.get(name)
        while n is not None and n.op_type != "Conv":
            if n.op_type not in ("Reshape", "Transpose", "Flatten", "QuantizeLinear", "DequantizeLinear"):
                return None, ops
            ops.append(n)
            n = producer.get(n.input[0])
        return n, ops

    tokens = []
    for n in graph.node:
        if n.op_type == "Concat":
            paths = [path_to_conv(i) for i in n.input]
            if paths and all(c is not None and "decoder/input_proj" in c.name for c, _ in paths):
                tokens.append((n, paths))
    assert len(tokens) == 1, [n.name for n, _ in tokens]
    concat, paths = tokens[0]
    assert len(paths) == 3
    for conv, ops in paths:
        perms = [list(a.ints) for o in ops if o.op_type == "Transpose" for a in o.attribute if a.name == "perm"]
        assert perms == [[0, 2, 3, 1]], (conv.name, [o.op_type for o in ops], perms)
    assert all(r.op_type != "Transpose" for r in readers[concat.output[0]]), [r.op_type for r in readers[concat.output[0]]]


def test_the_sampling_locations_are_computed_on_flat_offsets(bundles):
    """Every Mul and Add of two tensors between a decoder layer's `sampling_offsets` and its GridSamples works on
    the flat [bs, queries, heads * points * 2] tensor (a last axis of at least the heads times the points), not
    on a 5-D broadcast over a last axis of 2, which onnxruntime runs element by element (0.34 ms each at 640).
    A scalar operand (grid_sample's 2 * x - 1) broadcasts fast and is left out."""
    model = onnx.shape_inference.infer_shapes(onnx.load(str(bundles["onnx"] / "model.onnx")))
    graph = model.graph
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in graph.value_info}
    scalars = {i.name for i in graph.initializer if int(np.prod(i.dims)) <= 1}
    scalars |= {o for n in graph.node if n.op_type == "Constant" for a in n.attribute if a.name == "value"
                and int(np.prod(a.t.dims)) <= 1 for o in n.output}
    readers = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    offsets = [n for n in graph.node if n.op_type in ("MatMul", "Gemm") and "sampling_offsets" in n.name]
    assert offsets
    for start in offsets:
        seen, todo, arithmetic = set(), list(start.output), []
        while todo:
            for r in readers.get(todo.pop(), []):
                if r.name in seen or r.op_type == "GridSample":
                    continue
                seen.add(r.name)
                if r.op_type in ("Mul", "Add") and not scalars & set(r.input):
                    arithmetic.append(r)
                todo.extend(r.output)
        assert arithmetic, start.name
        for n in arithmetic:
            shape = shapes.get(n.output[0])
            assert shape and len(shape) <= 3 and shape[-1] >= 8, (n.name, shape)


def test_gather_sampling_has_no_gridsample_and_any_batch(bundles, weights):
    b = bundles["onnx_gather"]
    graph = onnx.load(str(b / "model.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert "GridSample" not in ops and "Gather" in ops
    # the sampler gathers rows of the value projection's output as it is laid out: no transpose of all tokens
    producer = {o: n for n in graph.node for o in n.output}
    tables = [n for n in graph.node if n.op_type == "Gather" and "cross_attn" in n.name
              and producer[n.input[0]].op_type in ("Reshape", "Add", "MatMul", "Gemm", "Transpose")]
    assert tables
    for n in tables:
        src = producer[n.input[0]]
        while src.op_type == "Reshape":
            src = producer[src.input[0]]
        assert src.op_type in ("Add", "MatMul", "Gemm") and "value_proj" in src.name, (n.name, src.op_type, src.name)
    rt = load_runtime(b)
    x = np.random.default_rng(0).random((3, 3, 96, 160), dtype=np.float32)
    x[1] = x[0]  # the same image with another original size: boxes scale with it
    sizes = np.array([[160, 96], [640, 480], [32, 64]])
    labels, boxes, scores = rt.infer(x, sizes)
    assert labels.shape == (3, 300) and boxes.shape == (3, 300, 4) and scores.shape == (3, 300)
    assert np.allclose(boxes[1], boxes[0] * np.array([4.0, 5.0, 4.0, 5.0]), rtol=1e-4, atol=1e-2)
    from rtdetr_edge.runtime.pytorch import TorchRuntime
    ref = TorchRuntime(weights, imgsz=(96, 160), sampling="gather").infer(x, sizes)
    assert np.abs(np.sort(ref[2], 1) - np.sort(scores, 1)).max() < 1e-4


def test_parity_passes_for_onnx_and_openvino_fp32_fp16(bundles, weights):
    report = parity([bundles[k] for k in ("onnx", "onnx_gather", "openvino", "openvino16")], weights)
    for a in report["artifacts"]:
        m = a["metrics"]
        assert a["ok"], (a["bundle"], a["broken"])
        if a["precision"] == "fp32":
            assert m["raw_score_max"] <= 1e-4 and m["raw_box_max"] <= 1e-4 and m["top100_match"] == 1.0
        else:
            assert m["raw_score_max"] <= 1e-2 and m["top100_match"] >= 0.95
    assert report["ok"]


def test_parity_cli_writes_reports_and_exit_code_1_on_broken_tolerance(bundles, weights, tmp_path):
    r = cli("parity", "--model", bundles["onnx"], "--weights", weights, "--report", tmp_path / "ok")
    assert r.returncode == 0, r.stderr
    assert "pass" in r.stdout
    for name in ("parity.json", "parity.md", "parity.png"):
        assert (tmp_path / "ok" / name).stat().st_size > 100
    r = cli("parity", "--model", bundles["onnx"], "--weights", weights, "--report", tmp_path / "bad",
            "--tol", "raw_score_max=1e-15", "--tol", "topk_score_max=1e-15")
    assert r.returncode == 1 and "FAIL" in r.stdout
    assert json.loads((tmp_path / "bad" / "parity.json").read_text())["ok"] is False


def test_parity_without_weights_uses_golden_outputs(bundles):
    report = parity([bundles["openvino"]])
    a = report["artifacts"][0]
    assert a["reference"].startswith("golden") and a["ok"]
    # the raw twin travels in the bundle: before-top-k parity on the device too, against the stored outputs
    assert a["metrics"]["raw_score_max"] <= 1e-4 and a["metrics"]["top100_match"] == 1.0


def test_damaged_bundle_is_refused(bundles, tmp_path):
    import shutil
    copy = tmp_path / "damaged"
    shutil.copytree(bundles["onnx"], copy)
    with open(copy / "golden.npz", "ab") as f:
        f.write(b"x")
    with pytest.raises(UserError, match="golden.npz .differs"):
        parity([copy])
    (copy / "golden.npz").unlink()
    with pytest.raises(UserError, match="golden.npz .missing"):
        parity([copy])


def test_predict_with_a_bundle(bundles, tmp_path):
    from rtdetr_edge.data.synth import generate
    data = generate(tmp_path / "d", 1, 2, 128)
    r = cli("predict", "--model", bundles["openvino"], "--source", data / "val", "--conf", "0.0", "--save",
            tmp_path / "drawn")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("300 detections") == 2 and len(list((tmp_path / "drawn").iterdir())) == 2


def test_failed_export_leaves_nothing(weights, tmp_path, monkeypatch):
    import rtdetr_edge.export as ex

    def boom(*a, **k):
        raise RuntimeError("converter crashed")
    monkeypatch.setattr(ex, "write_artifact", boom)
    monkeypatch.setattr(ex, "_WRITTEN", {})  # no earlier identical export to copy from: the converter runs
    with pytest.raises(RuntimeError):
        export(weights, "onnx", out=tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_export_user_errors_exit_2(weights, tmp_path):
    for args, expect in [(["--format", "onnx", "--precision", "fp16"], "ONNX FP16"),
                         (["--format", "caffe"], "--format"),
                         (["--imgsz", "100"], "multiple of 32"),
                         (["--format", "tflite", "--dynamic-batch"], "dynamic-batch")]:
        r = cli("export", "--weights", weights, "--out", tmp_path / "x", *args)
        assert r.returncode == 2 and expect in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_tflite_fp32_and_fp16(weights, tflite_bundles):
    fp32, fp16 = tflite_bundles["fp32"], tflite_bundles["fp16"]
    assert json.loads((fp32 / "manifest.json").read_text())["sampling"] == "gather"
    assert (fp16 / "model.tflite").stat().st_size < 0.6 * (fp32 / "model.tflite").stat().st_size
    report = parity([fp32], weights)  # with the raw twin: before and after top-k
    a = report["artifacts"][0]
    assert a["ok"], a["broken"]
    assert a["metrics"]["raw_score_max"] <= 1e-4 and a["metrics"]["top100_match"] == 1.0
    report = parity([fp16])  # against the stored golden outputs (as on a device)
    assert report["artifacts"][0]["ok"], report["artifacts"][0]["broken"]
    rt = load_runtime(fp32)
    assert rt.backend == "tflite" and rt.interpreter_name == "ai_edge_litert"
    # the FP16 file is the FP32 file with its weights cast: made from the FP32 bundle, not converted again
    conv = json.loads((fp16 / "manifest.json").read_text())["converter"]
    assert conv["cast_from"] == str(fp32) and conv["fp16"].startswith("ai-edge-quantizer float_casting")


def test_what_decides_an_artifacts_bytes(weights):
    """The reuse key: settings a format's file does not depend on (TFLite: no ONNX opset or simplifier; an
    FP32 file: no INT8 settings) do not tell two artifacts apart; everything else does."""
    from rtdetr_edge.export import ExportConfig, _artifact_key

    def key(**kw):
        return _artifact_key(ExportConfig(weights=str(weights), **kw), (128, 128), "model")

    assert key(format="tflite", opset=17, simplifier="onnxslim") == key(format="tflite", opset=13, simplifier="none")
    assert key(format="onnx", opset=17) != key(format="onnx", opset=16)
    assert key(format="onnx", simplifier="onnxsim") != key(format="onnx", simplifier="onnxslim")
    assert key(format="tflite", policy="default", calib="shapes-64") == key(format="tflite")
    assert key(format="tflite", precision="fp16") != key(format="tflite")
    assert key(format="tflite", sampling="grid_sample") != key(format="tflite", sampling="gather")
    assert key(format="onnx", precision="int8") is None  # INT8 depends on calibration: always made anew


def test_an_identical_artifact_is_copied_from_the_sealed_bundle_not_converted_again(weights, tmp_path, monkeypatch):
    """Several targets sharing one ONNX convert it once; a copy is taken only while the first bundle's file
    still matches its sha256."""
    import json

    import rtdetr_edge.export as ex
    from rtdetr_edge.export import export

    monkeypatch.setattr(ex, "_WRITTEN", {})  # this process's earlier exports do not count here

    first = export(weights, "onnx", imgsz=64, simplifier="none", out=tmp_path / "a")
    second = export(weights, "onnx", imgsz=64, simplifier="none", out=tmp_path / "b")
    m1, m2 = (json.loads((b / "manifest.json").read_text()) for b in (first, second))
    assert m2["converter"]["reused_from"] == str(first) and "reused_from" not in m1["converter"]
    assert m2["sha256"]["model.onnx"] == m1["sha256"]["model.onnx"]
    assert m2["sha256"]["raw/model.onnx"] == m1["sha256"]["raw/model.onnx"]
    with open(second / "model.onnx", "ab") as f:  # the bundle it would copy from, damaged: never copied from
        f.write(b"\0")
    third = export(weights, "onnx", imgsz=64, simplifier="none", out=tmp_path / "c")
    m3 = json.loads((third / "manifest.json").read_text())
    assert "reused_from" not in m3["converter"]
    other = export(weights, "onnx", imgsz=64, simplifier="none", opset=16, out=tmp_path / "d")  # other settings
    assert "reused_from" not in json.loads((other / "manifest.json").read_text())["converter"]

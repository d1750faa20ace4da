"""INT8 artifacts, in the form each runtime runs fastest (measured: docs/int8.md):

- `s8s8` (ONNX for TensorRT and onnxruntime's generic path; OpenVINO IR): modelopt's export of the
  fake-quant model: Q/DQ pairs, int8, zero point 0, weights per output channel, folded to int8 constants.
  The numbers are the fake-quant model's.
- `u8s8` (ONNX for onnxruntime on x86): onnxruntime fuses Q/DQ into int8 kernels only in its own layout
  (uint8 activations, quantized at the convolutions' outputs too; the matrix products write float, see
  U8S8_FLOAT_OUTPUTS). So this form is made by
  onnxruntime's quantizer (`quantize_static`, QDQ, uint8 activations, int8 per-channel weights, MinMax on
  the calibration list) from the float graph with the model's weights (the QAT-trained ones for a QAT
  checkpoint), on exactly the layers the policy quantizes (`nodes_to_quantize`), plus the weightless
  operations between quantized convolutions (ReLU, residual Add, pools, SiLU, Resize, Concat: onnxruntime runs
  them in uint8 instead of dequantizing each conv output and quantizing it again; measured in
  docs/int8_activations.md). A plain rewrite of the s8s8 pairs to uint8/zero point 128 runs slower than FP32
  (measured), so it is not offered.
- `static` (TFLite): ai-edge-quantizer's static INT8 (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED; float
  input and output) on the FP32 .tflite with the model's weights, calibrated on the calibration list, on the
  layers the policy quantizes: the converter's op names are merged call scopes, so each op is mapped to its
  layer by its weights (equal, or equal up to a per-column scale where the converter folded a LayerNorm's
  gain into the layer after it) and the policy's float layers get ai-edge-quantizer's no-quantize config.

For a QAT checkpoint, u8s8 and static clip each quantized layer's input where QAT learned to (the input
quantizer's amax: onnxruntime's TensorQuantOverrides, edited ai-edge-quantizer statistics) and take the lower
end, and every other range (the layers' outputs: QAT has none there), from calibration. Measured against the
calibrated ranges (and, for u8s8, QAT's full symmetric ones): within noise, the clipped files closest to the
model (docs/qat_ranges_onnx.md, docs/qat_ranges_tflite.md). PTQ keeps the calibrated ranges.
"""

import logging
import re
import shutil
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..fsutil import scratch
from ..vocab import INT8_FORMS_OF_FORMAT

log = logging.getLogger("rtdetr_edge")

FORM_OF_FORMAT = {"onnx": "s8s8", "openvino": "s8s8", "tflite": "static"}  # without a target
# the weight grid of each form: the x86 CPU forms put weights on 7 bits (without VNNI, the CPU's int8 dot
# product adds pairs of products in int16 with saturation: quant/fakequant.py; measured in docs/int8.md);
# TensorRT's s8s8 ONNX (GPUs) and TFLite (ARM's int8 dot products accumulate in int32) keep all 8
WEIGHT_BITS_OF_FORM = {("openvino", "s8s8"): 7, ("onnx", "u8s8"): 7, ("onnx", "s8s8"): 8, ("tflite", "static"): 8}
FORMS_OF_FORMAT = INT8_FORMS_OF_FORMAT
# u8s8: the weightless operations onnxruntime runs in uint8 (QLinearAdd/Mul/Sigmoid/Concat/AveragePool, Relu
# folded into the layer before it, MaxPool and Resize on uint8) when they sit between quantized convolutions
U8S8_ACTIVATION_OPS = ("Relu", "Add", "Mul", "Sigmoid", "Concat", "MaxPool", "AveragePool", "Resize")
U8S8_ACTIVATIONS = True  # False: the layers only (as before 2026-12-02; benchmarks/int8_activations.py)
# u8s8: the quantized matrix products (MatMul/Gemm) write float, not uint8. Every reader of their outputs runs
# in float (LayerNorm, GELU, softmax, the sampling arithmetic, the heads' sigmoid/box math; a quantized reader
# quantizes its own input), so an output pair was a requantization to uint8 and a DequantizeLinear straight
# back: onnxruntime's QGemm writes float when no output scale follows. Convolutions keep theirs: QLinearConv
# has no float output. False: as before 2026-12-03 (benchmarks/value_maps.py --change gemm_float_outputs)
U8S8_FLOAT_OUTPUTS = True
U8S8_FLOAT_OUTPUT_OPS = ("MatMul", "Gemm")
TFLITE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
# static: the weightless ops ai-edge-quantizer and XNNPACK run in int8, taken where they sit between INT8
# convolutions (PADV2, the max-pool's padding with the lowest float, stays float)
TFLITE_BETWEEN_OPS = ("ADD", "MUL", "LOGISTIC", "CONCATENATION", "PAD", "MAX_POOL_2D", "AVERAGE_POOL_2D",
                      "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR")
TFLITE_ACTIVATIONS = True  # False: the weighted ops only (as before 2026-12-02; benchmarks/int8_activations.py)


def check_form(fmt: str, form) -> str:
    form = form or FORM_OF_FORMAT[fmt]
    if form not in FORMS_OF_FORMAT[fmt]:
        raise UserError(f"--int8-form {form}: {fmt} INT8 comes as {', '.join(FORMS_OF_FORMAT[fmt])}")
    return form


def prepare_model(model, cfg):
    """The model to export: a QAT checkpoint as loaded (quantizers and ranges from training), or an FP32
    checkpoint quantized now by calibration (post-training quantization) with the policy. Returns it in
    eval mode with `model.quant` describing where INT8 went."""
    from ..quant.calib import load_calib
    from ..quant.fakequant import quantize
    from ..quant.policy import load_policy

    bits = WEIGHT_BITS_OF_FORM[(cfg.format, check_form(cfg.format, cfg.int8_form))]
    if getattr(model, "quant", None):
        if cfg.policy and load_policy(cfg.policy).groups != model.quant["policy"]["quantize"]:
            log.warning("the policy %s differs from the one the QAT checkpoint was trained with (%s): the "
                        "checkpoint's is used", cfg.policy, model.quant["policy"]["name"])
        if bits == 7 and model.quant.get("weight_bits", 8) == 8 and cfg.format == "openvino":
            log.warning("this QAT checkpoint's weights use the full 8-bit grid: on x86 CPUs without VNNI (AVX2, "
                        "AVX-512 without VNNI) OpenVINO's int8 kernels saturate and the file loses accuracy "
                        "(docs/int8.md); `rtdetr-edge qat --weight-bits 7` (the default) avoids it")
        return model.eval()
    if not cfg.calib:
        raise UserError("--precision int8 from an FP32 checkpoint is post-training quantization: give --calib "
                        "LIST (e.g. shapes-64, see calib/), or fine-tune with `rtdetr-edge qat` first (better)")
    calib = load_calib(cfg.calib)
    quantize(model.eval(), load_policy(cfg.policy or "default"), calib.batches(model.imgsz, 4), source="ptq",
             weight_bits=bits)
    model.quant["calib"] = calib.describe()
    return model.eval()


def calibration_inputs(model, cfg, raw):
    """Feeds for the runtime quantizers (u8s8, static): the export's --calib, else the list the checkpoint
    was calibrated with, else shapes-64."""
    from ..quant.calib import load_calib

    spec = cfg.calib or (model.quant.get("calib") or {}).get("list") or "shapes-64"
    calib = load_calib(spec)
    h, w = model.imgsz
    feeds = []
    for x in calib.batches(model.imgsz, batch=cfg.batch):
        if len(x) < cfg.batch:
            continue
        feeds.append((x,) if raw else (x, np.array([[w, h]] * len(x), np.int64)))
    if not feeds:
        raise UserError(f"--calib {spec}: fewer images ({len(calib)}) than the batch ({cfg.batch})")
    return feeds, calib.describe()


def quantized_nodes(graph) -> list:
    """Names of the Conv/MatMul/Gemm nodes whose weight comes through a DequantizeLinear (possibly via a
    Transpose or a Reshape): the layers a fake-quant export quantized."""
    producer = {o: n for n in graph.node for o in n.output}

    def dequantized(name):
        node = producer.get(name)
        while node is not None and node.op_type in ("Transpose", "Reshape", "Unsqueeze"):
            node = producer.get(node.input[0])
        return node is not None and node.op_type == "DequantizeLinear"

    return [n.name for n in graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and len(n.input) > 1
            and dequantized(n.input[1])]


def activations_between_convs(graph, convs) -> list:
    """Names of the nodes of U8S8_ACTIVATION_OPS whose every non-constant input comes from a quantized
    convolution (`convs`) or from a node already picked, in graph order: the ReLUs, residual Adds, pools, SiLUs
    (Sigmoid, Mul), Resizes and Concats of the backbone and the CCFM, between two quantized convolutions.
    Without them each conv output is dequantized for a float op and quantized again for the next conv
    (docs/int8_profile.md). Attention, LayerNorm, sampling and heads are never reached: their Gemm/MatMul
    inputs do not start a chain."""
    constant = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    producer = {o: n.name for n in graph.node for o in n.output}
    inside, picked = set(convs), []
    for n in graph.node:
        if n.op_type not in U8S8_ACTIVATION_OPS:
            continue
        acts = [i for i in n.input if i and i not in constant]
        if acts and all(producer.get(i) in inside for i in acts):
            inside.add(n.name)
            picked.append(n.name)
    return picked


def qat_input_ranges(qdq_path, float_path, lower_from_qat=False) -> dict:
    """onnxruntime `TensorQuantOverrides` for the float graph at `float_path`: each quantized Conv/MatMul/Gemm's
    activation input gets the upper end (and with `lower_from_qat`, the lower end) of the range of the
    fake-quant export's input quantizer of the same node (amax = scale x 127, zero point 0). A tensor feeding
    several layers takes the widest."""
    import onnx
    from onnx import numpy_helper

    qdq = onnx.load(str(qdq_path)).graph
    consts = {i.name: numpy_helper.to_array(i) for i in qdq.initializer}
    for n in qdq.node:  # the exporter writes the quantizers' scales as Constant nodes
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    producer = {o: n for n in qdq.node for o in n.output}
    amax_of_node = {}
    for n in qdq.node:
        dq = producer.get(n.input[0]) if n.op_type in ("Conv", "MatMul", "Gemm") else None
        if dq is not None and dq.op_type == "DequantizeLinear" and dq.input[1] in consts \
                and consts[dq.input[1]].size == 1:
            amax_of_node[n.name] = float(consts[dq.input[1]].reshape(-1)[0]) * 127.0
    graph = onnx.load(str(float_path)).graph
    weights = {i.name for i in graph.initializer}
    amax_of_tensor = {}
    for n in graph.node:
        if n.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        owner = next((q for q in amax_of_node if n.name == q or n.name.startswith(q + "/")), None)
        if owner is not None:
            tensor = n.input[0] if n.input[0] not in weights else n.input[1]
            amax_of_tensor[tensor] = max(amax_of_node[owner], amax_of_tensor.get(tensor, 0.0))
    return {t: [{"rmax": np.float32(a), **({"rmin": np.float32(-a)} if lower_from_qat else {})}]
            for t, a in amax_of_tensor.items()}


def write(module, model, path, example_inputs, cfg, raw=False, fp32_file=None) -> dict:
    """Write the INT8 artifact of `module` (DeployModel or RawOutputs around the quantized `model`);
    `fp32_file` (TFLite): the float network's .tflite already converted."""
    form = check_form(cfg.format, cfg.int8_form)
    facts = {"int8_form": form}
    if cfg.format == "tflite":
        facts.update(_tflite_static(module, model, path, example_inputs, cfg, raw, fp32_file))
    elif cfg.format == "openvino":
        with scratch(path) as tmp:
            onnx_path = tmp / "model.onnx"
            facts.update(_onnx_s8s8(module, onnx_path, example_inputs, cfg, raw))
            from .openvino import export_openvino

            facts.update(export_openvino(onnx_path, path, "int8"))
    elif form == "s8s8":
        facts.update(_onnx_s8s8(module, path, example_inputs, cfg, raw))
    else:
        facts.update(_onnx_u8s8(module, model, path, example_inputs, cfg, raw))
    return facts


def _onnx_s8s8(module, path, example_inputs, cfg, raw) -> dict:
    import onnx

    from .onnx import export_onnx
    from .qdq import fold_weights, qdq_facts, quantize_before_pools

    facts = export_onnx(module, path, example_inputs, dynamic_batch=cfg.dynamic_batch, raw=raw,
                        simplifier="none", opset=cfg.opset)
    graph = onnx.load(str(path))
    facts["weights_folded"] = fold_weights(graph)
    facts["pools_quantized"] = quantize_before_pools(graph.graph)
    onnx.checker.check_model(graph, full_check=True)
    onnx.save(graph, str(path))
    facts.update(qdq=qdq_facts(graph), quantizer="nvidia-modelopt fake-quant exported as Q/DQ",
                 simplify_note="not simplified: a simplifier would fold the int8 weights back to float")
    return facts


def _onnx_u8s8(module, model, path, example_inputs, cfg, raw) -> dict:
    import onnx
    import onnxruntime
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from ..quant.fakequant import quantizers_off
    from .onnx import INPUT_NAMES, export_onnx
    from .qdq import qdq_facts

    feeds, calib_facts = calibration_inputs(model, cfg, raw)
    names = INPUT_NAMES[:1] if raw else INPUT_NAMES

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([dict(zip(names, f)) for f in feeds])

        def get_next(self):
            return next(self.it, None)

    with scratch(path) as tmp:
        # the policy's layers, as the exporter names their nodes: those fed by a dequantized weight in the
        # fake-quant model's export (node names come from call scopes, not module names)
        qdq = Path(tmp) / "qdq.onnx"
        export_onnx(module, qdq, example_inputs, dynamic_batch=cfg.dynamic_batch, raw=raw, simplifier="none",
                    opset=cfg.opset)
        layers = quantized_nodes(onnx.load(str(qdq)).graph)
        fp32 = Path(tmp) / "fp32.onnx"
        with quantizers_off(model):
            facts = export_onnx(module, fp32, example_inputs, dynamic_batch=cfg.dynamic_batch, raw=raw,
                                simplifier="none", opset=cfg.opset)
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        graph = onnx.load(str(pre)).graph
        chosen = [n.name for n in graph.node if n.op_type in ("Conv", "MatMul", "Gemm")
                  and any(n.name == q or n.name.startswith(q + "/") for q in layers)]
        lost = [q for q in layers if not any(c == q or c.startswith(q + "/") for c in chosen)]
        if lost:  # onnxruntime's pre-processing folded them away (seen on tiny inputs: 1x1 maps, constants)
            log.warning("u8s8: %d of the %d layers the policy quantizes are gone after onnxruntime's "
                        "pre-processing (folded into constants), e.g. %s: they run in float", len(lost),
                        len(layers), lost[0])
        picked = set(chosen)
        convs = [n.name for n in graph.node if n.op_type == "Conv" and n.name in picked]
        between = activations_between_convs(graph, convs) if U8S8_ACTIVATIONS else []
        qat = model.quant.get("source") == "qat"
        overrides = qat_input_ranges(qdq, pre) if qat else {}
        extra = {"TensorQuantOverrides": overrides} if overrides else {}
        if U8S8_FLOAT_OUTPUTS:
            extra["OpTypesToExcludeOutputQuantization"] = list(U8S8_FLOAT_OUTPUT_OPS)
        root = logging.getLogger()
        level, root.level = root.level, logging.WARNING  # its per-node INFO lines
        try:
            quantize_static(str(pre), str(path), Reader(), quant_format=QuantFormat.QDQ,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                            op_types_to_quantize=["Conv", "MatMul", "Gemm", *U8S8_ACTIVATION_OPS],
                            nodes_to_quantize=chosen + between,
                            calibrate_method=CalibrationMethod.MinMax,
                            reduce_range=WEIGHT_BITS_OF_FORM[("onnx", "u8s8")] == 7,
                            extra_options=extra or None)
        finally:
            root.level = level
    out = onnx.load(str(path))
    onnx.checker.check_model(out, full_check=True)
    facts.update(qdq=qdq_facts(out), nodes_quantized=len(chosen), activations_quantized=len(between),
                 policy_layers_folded_away=len(lost),
                 float_outputs=list(U8S8_FLOAT_OUTPUT_OPS) if U8S8_FLOAT_OUTPUTS else [],
                 calibration=calib_facts, weight_bits=WEIGHT_BITS_OF_FORM[("onnx", "u8s8")],
                 activation_ranges=(f"QAT's clip (the upper end) on {len(overrides)} layer inputs; their lower "
                                    "ends and the convolutions' outputs calibrated (MinMax)") if qat else
                 "calibrated (MinMax)",
                 quantizer=f"onnxruntime.quantization {onnxruntime.__version__} quantize_static (QDQ, U8S8, "
                           "per-channel weights on 7 bits (reduce_range), MinMax) on the model's weights")
    return facts


def _tflite_static(module, model, path, example_inputs, cfg, raw, fp32_file=None) -> dict:
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer

    from ..quant.fakequant import quantizers_off
    from .tflite import converter_output_to_log, export_tflite

    feeds, calib_facts = calibration_inputs(model, cfg, raw)
    with scratch(path) as tmp:
        fp32 = str(tmp / "fp32.tflite")
        if fp32_file is not None:
            shutil.copyfile(fp32_file, fp32)
            facts = {"converter": "litert-torch", "fp32_from": str(fp32_file)}
        else:
            with quantizers_off(model):
                facts = export_tflite(module, fp32, example_inputs, "fp32")
        floats = tflite_float_ops(fp32, model)
        with converter_output_to_log():
            qt = quantizer.Quantizer(fp32)
            for op in TFLITE_OPS:
                qt.add_static_config(".*", getattr(qtyping.TFLOperationName, op), activation_num_bits=8,
                                     weight_num_bits=8)
            between = tflite_activations_between_convs(fp32, floats["int8_convs"]) if TFLITE_ACTIVATIONS else []
            for op, scope in between:
                qt.add_static_config("^" + re.escape(scope) + "$", getattr(qtyping.TFLOperationName, op),
                                     activation_num_bits=8, weight_num_bits=8)
            for op, scope in floats["scopes"]:  # later configs win: these ops stay float
                qt.update_quantization_recipe("^" + re.escape(scope) + "$", getattr(qtyping.TFLOperationName, op),
                                              algorithm_key=algorithm_manager.AlgorithmName.NO_QUANTIZE)
            signature = qt.get_signature_keys()[0] if hasattr(qt, "get_signature_keys") else "serving_default"
            keys = _tflite_input_names(fp32, signature)
            samples = [{k: (v.astype(np.int32) if v.dtype == np.int64 else v) for k, v in zip(keys, f)}
                       for f in feeds]
            result = qt.calibrate({signature: samples})
            clipped = qat_clip(result, floats["inputs"], model) if model.quant.get("source") == "qat" else 0
            qt.quantize(result).export_model(str(path), overwrite=True)
    facts.update(calibration=calib_facts, quantizer="ai-edge-quantizer static INT8 (" + ", ".join(TFLITE_OPS)
                 + "; float input and output) on the model's weights",
                 policy_in_file={k: v for k, v in floats.items() if k not in ("scopes", "inputs", "int8_convs")},
                 activations_quantized=len(between),
                 activation_ranges=(f"QAT's clip (the upper end) on {clipped} layer inputs; their lower ends and "
                                    "the other tensors calibrated (min/max)") if clipped else "calibrated (min/max)")
    return facts


def qat_clip(stats, inputs, model) -> int:
    """Set the calibrated maximum of each (input tensor, layer) in ai-edge-quantizer's statistics `stats` to the
    QAT input quantizer's amax (the lower end stays calibrated, as for u8s8). Returns how many were set."""
    modules = dict(model.named_modules())
    done = set()
    for tensor, layer in inputs:
        q = getattr(modules[layer], "input_quantizer", None)
        if tensor not in stats or q is None or getattr(q, "amax", None) is None or q.amax.numel() != 1:
            continue
        amax = float(q.amax) if tensor not in done else max(float(q.amax), float(np.max(stats[tensor]["max"])))
        stats[tensor]["max"] = np.full_like(np.asarray(stats[tensor]["max"]), amax)
        done.add(tensor)
    return len(done)


def tflite_float_ops(path, model) -> dict:
    """The CONV_2D/DEPTHWISE_CONV_2D/FULLY_CONNECTED ops of an FP32 .tflite that compute a layer the model's
    policy keeps float, as (op name, ai-edge-quantizer scope) pairs, with counts. Each op is mapped to its layer
    by its weight tensor: equal to the layer's weight (OHWI for convolutions), or equal up to a scale per
    input column (the converter folds a LayerNorm's gain into the layer that follows it). An op that maps to
    no layer, or to two, is counted as unmapped and quantized as before. `inputs`: (input tensor, layer) of the
    INT8 ops whose weights equal their layer's up to float rounding (their input is the layer's input, as QAT
    saw it)."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fu

    from ..quant.policy import quantizable_layers

    modules = dict(model.named_modules())
    quantized = set(model.quant["layers"])
    weights = {}
    for name in quantizable_layers(model):
        w = modules[name].weight.detach().float().cpu().numpy()
        weights[name] = w.transpose(0, 2, 3, 1) if w.ndim == 4 else w
    by_bytes = {}
    for name, w in weights.items():
        by_bytes.setdefault(np.ascontiguousarray(w).tobytes(), []).append(name)
    codes = {fu.TFL_OP_NAME_TO_CODE[op]: op for op in TFLITE_OPS}
    fb = fu.read_model(Path(path))
    sg = fb.subgraphs[0]
    scopes, inputs, counts = [], [], {"int8_ops": 0, "float_ops": 0, "unmapped_ops": 0}
    int8_convs = []  # output tensors of the INT8 convolutions
    for op in sg.operators:
        kind = codes.get(fb.operatorCodes[op.opcodeIndex].builtinCode)
        if kind is None:
            continue
        data = fu.get_tensor_data(sg.tensors[op.inputs[1]], fb.buffers) if len(op.inputs) > 1 else None
        names = [] if data is None else by_bytes.get(np.ascontiguousarray(data, np.float32).tobytes(), [])
        if data is not None and not names:
            names = [n for n, w in weights.items() if w.shape == data.shape and _column_scaled(data, w)]
        if len(names) == 1 and names[0] not in quantized:
            counts["float_ops"] += 1
            scopes.append((kind, fu.get_op_scope(op, sg.tensors)))
            continue
        counts["int8_ops"] += 1
        if kind != "FULLY_CONNECTED":
            int8_convs += list(op.outputs)
        if len(names) != 1:
            counts["unmapped_ops"] += 1
        elif _columns_unscaled(data, weights[names[0]], tol=1e-3):  # no gain folded in (BatchNorm folded:
            inputs.append((sg.tensors[op.inputs[0]].name.decode(), names[0]))  # rounding only)
    if counts["unmapped_ops"]:
        log.warning("tflite static INT8: %d weighted ops match no layer of the model by their weights: they are "
                    "quantized whatever the policy says", counts["unmapped_ops"])
    return {**counts, "scopes": scopes, "inputs": inputs, "int8_convs": int8_convs}


def tflite_activations_between_convs(path, int8_convs) -> list:
    """(op name, ai-edge-quantizer scope) of the ops of TFLITE_BETWEEN_OPS in an FP32 .tflite whose every
    non-constant input comes from an INT8 convolution (`int8_convs`: output tensors) or from an op already
    picked, in graph order: the residual ADDs, pools, paddings, SiLUs (LOGISTIC, MUL), resizes and concatenations
    of the backbone and the CCFM (the ReLUs are fused into the convolutions). Left float, each would be
    dequantized and quantized again between two INT8 convolutions. An op is kept only when its scope names no
    other op of its kind (the quantizer's configs match scopes)."""
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as fu

    codes = {fu.TFL_OP_NAME_TO_CODE[op]: op for op in TFLITE_BETWEEN_OPS}
    fb = fu.read_model(Path(path))
    sg = fb.subgraphs[0]
    inside, picked, scope_count = set(int8_convs), [], {}
    for op in sg.operators:
        kind = codes.get(fb.operatorCodes[op.opcodeIndex].builtinCode)
        if kind is None:
            continue
        scope = fu.get_op_scope(op, sg.tensors)
        scope_count[(kind, scope)] = scope_count.get((kind, scope), 0) + 1
        acts = [t for t in op.inputs if t >= 0 and fu.get_tensor_data(sg.tensors[t], fb.buffers) is None]
        if acts and all(t in inside for t in acts):
            inside.update(op.outputs)
            picked.append((kind, scope))
    return [(kind, scope) for kind, scope in picked if scope_count[(kind, scope)] == 1]


def _fit_columns(a, b):
    """The scale per input column (axis 1 of the 2-D views) that best maps b onto a, and the views."""
    a2, b2 = a.reshape(a.shape[0], -1).astype(np.float64), b.reshape(b.shape[0], -1).astype(np.float64)
    return (a2 * b2).sum(0) / np.maximum((b2 * b2).sum(0), 1e-30), a2, b2


def _column_scaled(a, b, tol=1e-4) -> bool:
    """a == b * s for one scale s per input column, within a relative `tol`."""
    scale, a2, b2 = _fit_columns(a, b)
    return bool(np.linalg.norm(a2 - b2 * scale) <= tol * max(np.linalg.norm(a2), 1e-30))


def _columns_unscaled(a, b, tol) -> bool:
    """Every column's scale is 1 within `tol` (no gain folded in: float rounding only)."""
    scale, _, b2 = _fit_columns(a, b)
    return bool(np.all(((b2 * b2).sum(0) == 0) | (np.abs(scale - 1) <= tol)))


def _tflite_input_names(path, signature) -> list:
    """The signature's input names in argument order (litert-torch names them args_0, args_1, ...)."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(signature)
    return sorted(runner.get_input_details(), key=lambda n: int(n.rsplit("_", 1)[-1]) if n[-1].isdigit() else 0)

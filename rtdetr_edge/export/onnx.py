"""ONNX export: the authors' interface, opset 17, checked, simplified only when outputs stay the same.

Inputs `images` [N,3,H,W] float32 in [0,1] and `orig_target_sizes` [N,2] int64 (w, h); outputs `labels`,
`boxes` (xyxy pixels), `scores`, so existing RT-DETR inference code runs our files unchanged.
The TorchScript-based exporter (dynamo=False) is used: it exports both grid_sample and the gather
sampler correctly, where the dynamo exporter (torch 2.13) writes an invalid graph for the gather
sampler. Opset 17: GridSample needs >= 16, LayerNormalization is native from 17,
and TensorRT reads GridSample wrongly from opset 20 on.
"""

import logging
import warnings
from pathlib import Path

import torch

from .. import vocab
from ..compare import same_outputs

log = logging.getLogger("rtdetr_edge")

INPUT_NAMES = list(vocab.INPUT_NAMES)
OUTPUT_NAMES = list(vocab.OUTPUT_NAMES)
RAW_OUTPUT_NAMES = list(vocab.RAW_OUTPUT_NAMES)


class RawOutputs(torch.nn.Module):
    """images -> sigmoid scores [N,Q,C] and boxes [N,Q,4] (cxcywh normalised): the outputs before top-k."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, images):
        out = self.model(images)
        return out["pred_logits"].sigmoid(), out["pred_boxes"]


def write(module, path, example_inputs, cfg, raw=False) -> dict:
    """The format registry's entry point: an ONNX file at `path` (see ExportConfig)."""
    return export_onnx(module, path, example_inputs, dynamic_batch=cfg.dynamic_batch, raw=raw,
                       simplifier=cfg.simplifier, opset=cfg.opset)


def export_onnx(module, path, example_inputs, dynamic_batch=False, raw=False, simplifier="onnxslim",
                opset=vocab.OPSET_DEFAULT) -> dict:
    """Export `module` (DeployModel, or RawOutputs with raw=True) to `path`. Returns facts for the manifest.
    Below opset 14 self-attention is written as matmul + softmax (no exporter for SDPA there); below 17 the
    exporter writes LayerNorm out as ReduceMean/Sub/Pow/Sqrt/Div (TensorRT < 8.6 parses no LayerNormalization)."""
    import onnx

    from ..model.attention import explicit_attention

    path = Path(path)
    # the exporter restores the wrapper's training flag on every child afterwards: a fresh wrapper
    # (training=True) would leave the model in training mode
    module.eval()
    inputs = INPUT_NAMES[:1] if raw else INPUT_NAMES
    outputs = RAW_OUTPUT_NAMES if raw else OUTPUT_NAMES
    dynamic_axes = {n: {0: "batch"} for n in inputs + outputs} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad(), explicit_attention(int(opset) < 14):
        warnings.simplefilter("ignore")  # tracer warnings about python ints taken from fixed sizes
        torch.onnx.export(module, tuple(example_inputs), str(path), input_names=inputs, output_names=outputs,
                          opset_version=int(opset), dynamic_axes=dynamic_axes, dynamo=False, do_constant_folding=True)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    facts = {"exporter": f"torch.onnx (TorchScript) {torch.__version__}", "opset": int(opset), "simplified": False,
             "nodes_exported": len(model.graph.node)}
    if simplifier != "none":
        facts.update(_simplify_if_equal(path, [t.numpy() for t in example_inputs], inputs, simplifier))
    ops = sorted({n.op_type for n in onnx.load(str(path)).graph.node})
    facts["ops"] = ops
    return facts


def _run(path, feeds):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _simplified(model, simplifier):
    """(simplified model, "name version") with onnxslim or onnxsim."""
    if simplifier == "onnxsim":
        import onnxsim

        out, ok = onnxsim.simplify(model)
        if not ok:
            raise RuntimeError("onnxsim's own check failed")
        return out, f"onnxsim {onnxsim.__version__}"
    import onnxslim

    return onnxslim.slim(model), f"onnxslim {onnxslim.__version__}"


def _simplify_if_equal(path, arrays, input_names, simplifier="onnxslim") -> dict:
    """Simplify the graph (onnxslim or onnxsim); keep the result only if onnxruntime gives the same outputs
    (1e-6)."""
    import importlib.util

    import onnx

    if importlib.util.find_spec(simplifier) is None:
        return {"simplified": False, "simplify_note": f"{simplifier} not installed"}
    feeds = dict(zip(input_names, arrays))
    before = _run(path, feeds)
    slim_path = path.with_name(path.stem + ".slim.onnx")
    try:
        slim, name = _simplified(onnx.load(str(path)), simplifier)
        onnx.save(slim, str(slim_path))
        onnx.checker.check_model(onnx.load(str(slim_path)), full_check=True)
        after = _run(slim_path, feeds)
    except Exception as e:  # a simplifier failure is not an export failure: keep the checked graph
        slim_path.unlink(missing_ok=True)
        log.warning("%s failed (%s); keeping the unsimplified graph", simplifier, str(e).splitlines()[0][:200])
        return {"simplified": False, "simplify_note": f"{simplifier} failed: {type(e).__name__}"}
    if not same_outputs(before, after, atol=1e-6):
        slim_path.unlink()
        log.warning("%s changed the outputs; keeping the unsimplified graph", simplifier)
        return {"simplified": False, "simplify_note": f"{simplifier}: simplified graph gave different outputs"}
    slim_path.replace(path)
    return {"simplified": True, "simplifier": name}

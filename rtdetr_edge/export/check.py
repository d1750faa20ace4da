"""The written graph against a target's runtime, before a bundle is kept.

For ONNX (what TensorRT and onnxruntime read): the opset, every node's operator against the runtime's
unsupported list, GridSample's opset limit, TopK's K (an initializer, below the runtime's maximum),
reduction axes that must be initializers, and dynamic input shapes where the runtime needs static ones.
Each violation names the node and the fix. OpenVINO IR and TFLite are written by converters that only emit
what their runtime runs; for them the check is the recipe's format/precision check (targets.check_target).
"""

from pathlib import Path

REDUCE_OPS = ("ReduceMax", "ReduceMean", "ReduceSum", "ReduceMin", "ReduceProd", "ReduceL2")


def _constants(graph) -> dict:
    """name -> numpy value of initializers and Constant nodes."""
    from onnx import numpy_helper

    out = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    out[n.output[0]] = numpy_helper.to_array(a.t)
    return out


RULES = ("standard_domain", "max_opset", "unsupported_ops", "gridsample_opset", "topk_k", "reduce_axes")


def check_onnx(path, runtime) -> list:
    """Violations of `runtime` (a targets RuntimeFacts) in the ONNX file at `path`: one line each."""
    return check_onnx_report(path, runtime)["violations"]


def check_onnx_report(path, runtime) -> dict:
    """What was checked and what was found, per rule, for the manifest: the runtime, the graph's opset and
    node count, each rule with what it compared against (None: the runtime states no such limit, so the rule
    was not applied) and the nodes that broke it; `violations` as one line each."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    name = f"{runtime.name} ({runtime.runtime} {runtime.version})"
    found = {rule: [] for rule in RULES}
    if runtime.max_opset is not None and opset is not None and opset > runtime.max_opset:
        found["max_opset"].append(f"{path.name}: opset {opset}: {name} parses ONNX up to opset {runtime.max_opset}: "
                                  f"use --opset {runtime.max_opset}")
    unsupported = set(runtime.unsupported_ops)
    consts = _constants(graph)
    seen = set()
    for node in graph.node:
        op, label = node.op_type, node.name or node.output[0]
        if node.domain not in ("", "ai.onnx"):
            found["standard_domain"].append(f"{path.name}: node {label}: custom-domain operator {node.domain}.{op} is "
                                            f"not standard ONNX")
        if op in unsupported and op not in seen:
            seen.add(op)
            count = sum(n.op_type == op for n in graph.node)
            fix = runtime.fixes.get(op, "this model cannot run there as exported")
            found["unsupported_ops"].append(f"{path.name}: node {label} ({op}, {count} in all): {op} is not parsed by "
                                            f"{name}: {fix}")
        if op == "GridSample" and runtime.gridsample_max_opset and opset and opset > runtime.gridsample_max_opset:
            found["gridsample_opset"].append(f"{path.name}: node {label}: GridSample at opset {opset} is read as "
                                             f"nearest by {name}: use --opset {runtime.gridsample_max_opset} or "
                                             f"--sampling gather")
        if op == "TopK" and len(node.input) > 1:
            k = consts.get(node.input[1])
            if k is None and runtime.topk_k_initializer:
                found["topk_k"].append(f"{path.name}: node {label}: TopK's K must be a constant for {name}: export "
                                       f"with a fixed batch and input size")
            if k is not None and runtime.topk_k_max and int(k.reshape(-1)[0]) >= runtime.topk_k_max:
                found["topk_k"].append(f"{path.name}: node {label}: TopK K={int(k.reshape(-1)[0])} >= "
                                       f"{runtime.topk_k_max}, the most {name} takes")
        if (op in REDUCE_OPS and runtime.reduce_axes_initializer and len(node.input) > 1 and node.input[1]
                and node.input[1] not in consts):
            found["reduce_axes"].append(f"{path.name}: node {label}: {op}'s axes must be a constant for {name}")
    limits = {"standard_domain": "ai.onnx only", "max_opset": runtime.max_opset,
              "unsupported_ops": sorted(unsupported) or None, "gridsample_opset": runtime.gridsample_max_opset,
              "topk_k": ({"constant": runtime.topk_k_initializer, "max": runtime.topk_k_max}
                         if runtime.topk_k_initializer or runtime.topk_k_max else None),
              "reduce_axes": "constant" if runtime.reduce_axes_initializer else None}
    rules = {rule: {"against": limits[rule], "applied": limits[rule] is not None, "passed": not found[rule],
                    "violations": len(found[rule])} for rule in RULES}
    violations = [v for rule in RULES for v in found[rule]]
    return {"file": path.name, "runtime": name, "opset": opset, "nodes": len(graph.node), "rules": rules,
            "passed": not violations, "violations": violations}


def graph_facts(path) -> dict:
    """Operator counts and opset of an ONNX file (for the manifest and the simplifier comparison)."""
    from collections import Counter

    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ops = Counter(n.op_type for n in model.graph.node)
    return {"opset": next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None),
            "nodes": sum(ops.values()), "ops": dict(sorted(ops.items()))}

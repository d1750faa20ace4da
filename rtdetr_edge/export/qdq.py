"""INT8 Q/DQ ONNX: the forms each runtime runs best, made from the one graph modelopt exports.

modelopt's export of a quantized model (TorchScript exporter, opset >= 13) is the TensorRT form: every
quantizer is a QuantizeLinear/DequantizeLinear pair, int8, zero point 0, weights per output channel
(axis 0), activations per tensor. What this file adds is graph bookkeeping, no quantization math:

- `fold_weights`: a QuantizeLinear on a float weight initializer becomes the int8 initializer it would
  produce (ONNX rounding: half to even, saturate), so the file carries int8 weights (~4x smaller) and
  runtimes see DequantizeLinear(int8 constant), the weight form every Q/DQ consumer expects.
  A weight whose dequantized value is only reshaped before its layer (the decoder's value projection, a
  Linear's [C, C] weights run as a 1x1 convolution) is stored in the layer's shape, so the layer reads the
  DequantizeLinear directly.
- `quantize_before_pools`: a MaxPool whose every reader is the same activation quantizer gets that pair on
  its input instead (max commutes with a monotone quantizer, so the numbers are equal): the pool then runs
  on 8-bit values and the layer before it can write 8-bit output. OpenVINO otherwise ran the backbone's
  max-pool in f32 (1.3-2.1 ms at 640) with a separate FakeQuantize after it.
- Not here: rewriting the activation pairs to uint8 with zero point 128 (the same 256 values) gives
  onnxruntime no int8 kernels and runs slower than FP32 (measured: benchmarks/int8.py), so onnxruntime's
  form is made by its own quantizer (export/int8.py).
- `qdq_facts`: what the manifest and the tests read back: pair counts, types and zero points.
"""

from collections import Counter

import numpy as np

# quantize_before_pools runs on the s8s8 file; False: the file as modelopt writes it (benchmarks/value_maps.py)
POOLS = True


def _const_values(graph) -> dict:
    """name -> numpy array for initializers and Constant nodes' outputs."""
    from onnx import numpy_helper

    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:  # topological order: an Identity of a constant (a shared weight) is that constant
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            values[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        elif n.op_type == "Identity" and n.input[0] in values:
            values[n.output[0]] = values[n.input[0]]
    return values


def _quantize(w, scale, zero_point, axis):
    """ONNX QuantizeLinear: saturate(round_half_even(w / scale) + zero_point)."""
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * w.ndim
        shape[axis] = -1
        scale, zero_point = scale.reshape(shape), zero_point.reshape(shape)
    info = np.iinfo(zero_point.dtype)
    q = np.rint(w.astype(np.float32) / scale.astype(np.float32)) + zero_point.astype(np.int32)
    return np.clip(q, info.min, info.max).astype(zero_point.dtype)


def fold_weights(model) -> int:
    """Replace each QuantizeLinear of a constant (a weight: an initializer or a Constant node) by its int8
    result, and drop the float weights no longer used; returns how many were folded."""
    from onnx import numpy_helper

    graph = model.graph
    values = _const_values(graph)
    keep, folded = [], 0
    for n in graph.node:
        if n.op_type == "QuantizeLinear" and n.input[0] in values:
            axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
            zp = values[n.input[2]] if len(n.input) > 2 and n.input[2] else np.zeros((), np.uint8)
            q = _quantize(values[n.input[0]], values[n.input[1]], zp, axis)
            graph.initializer.append(numpy_helper.from_array(q, n.output[0]))
            folded += 1
            continue
        keep.append(n)
    del graph.node[:]
    graph.node.extend(keep)
    _fold_weight_reshapes(graph)
    while True:  # constants (and Identities of them) no node reads any more
        used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if n.op_type in ("Constant", "Identity") and n.output[0] not in used
                and (n.op_type == "Constant" or n.input[0] in values)]
        if not dead:
            break
        for n in dead:
            graph.node.remove(n)
    for init in [i for i in graph.initializer if i.name not in used]:
        graph.initializer.remove(init)
    return folded


def _fold_weight_reshapes(graph) -> None:
    """DequantizeLinear(int8 weight) -> Reshape/Unsqueeze (a constant shape) -> layers becomes
    DequantizeLinear(the int8 weight in the new shape) -> layers, when the reshape keeps the quantization axis
    and is the dequantized weight's only reader."""
    from onnx import numpy_helper

    inits = {i.name: i for i in graph.initializer}
    values = _const_values(graph)
    producer = {o: n for n in graph.node for o in n.output}
    readers = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    for r in [n for n in graph.node if n.op_type in ("Reshape", "Unsqueeze")]:
        dq = producer.get(r.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits or len(r.input) < 2 \
                or r.input[1] not in values or len(readers.get(dq.output[0], [])) != 1:
            continue
        w = numpy_helper.to_array(inits[dq.input[0]])
        if r.op_type == "Reshape":
            shape = [w.shape[k] if d == 0 else int(d) for k, d in enumerate(values[r.input[1]].tolist())]
            new = w.reshape(shape)
        else:
            new = np.expand_dims(w, tuple(int(a) % (w.ndim + values[r.input[1]].size)
                                          for a in values[r.input[1]].ravel()))
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        scale = values.get(dq.input[1])
        if scale is not None and scale.size > 1 and (axis % w.ndim != 0 or new.shape[0] != w.shape[0]):
            continue  # per-channel on another axis than the first: leave it
        inits[dq.input[0]].CopyFrom(numpy_helper.from_array(new, dq.input[0]))
        dq.output[0] = r.output[0]
        graph.node.remove(r)


def quantize_before_pools(graph) -> int:
    """MaxPool(X) -> QuantizeLinear(s, z) -> DequantizeLinear(s, z) -> readers, for every reader of the pool,
    becomes QuantizeLinear(X) -> DequantizeLinear -> MaxPool -> readers (one pair). Exact: the maximum of
    values on the grid is on the grid, and a monotone quantizer commutes with max. Returns how many pools."""
    if not POOLS:
        return 0
    values = _const_values(graph)
    readers = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)
    outputs = {o.name for o in graph.output}
    moved = 0
    for pool in [n for n in graph.node if n.op_type == "MaxPool" and len(n.output) == 1]:
        # modelopt's quantizers read through a Cast to float (a no-op on the float32 graph)
        casts = [c for c in readers.get(pool.output[0], []) if c.op_type == "Cast"
                 and any(a.name == "to" and a.i == 1 for a in c.attribute)]
        qs = [r for r in readers.get(pool.output[0], []) if r not in casts] \
            + [r for c in casts for r in readers.get(c.output[0], [])]
        if not qs or pool.output[0] in outputs or any(q.op_type != "QuantizeLinear" for q in qs) \
                or any(c.output[0] in outputs for c in casts):
            continue
        params = []
        for q in qs:
            if any(i not in values for i in q.input[1:]) or _is_weight_pair(q, values):
                break
            params.append(tuple(values[i].tobytes() + str(values[i].dtype).encode() for i in q.input[1:])
                          + tuple(sorted((a.name, a.i) for a in q.attribute)))
        if len(params) != len(qs) or len(set(params)) != 1:
            continue
        dqs = [d for q in qs for d in readers.get(q.output[0], [])]
        if any(d.op_type != "DequantizeLinear" or d.output[0] in outputs for d in dqs) \
                or any(q.output[0] in outputs for q in qs):
            continue
        first_q, first_dq = qs[0], dqs[0]
        x = pool.input[0]
        # the first pair moves onto the pool's input; the pool's readers read the pool; the other pairs go
        first_q.input[0] = x
        pool.input[0] = first_dq.output[0]
        for d in dqs:
            for r in readers.get(d.output[0], []):
                for k, i in enumerate(r.input):
                    if i == d.output[0] and r is not pool:
                        r.input[k] = pool.output[0]
        for n in qs[1:] + dqs[1:] + casts:
            graph.node.remove(n)
        moved += 1
    if moved:
        _sort_nodes(graph)
    return moved


def _sort_nodes(graph) -> None:
    """Put the nodes back in an order where each comes after what it reads (the old order where it can)."""
    import heapq

    nodes = list(graph.node)
    producer = {o: k for k, n in enumerate(nodes) for o in n.output}
    waiting = [0] * len(nodes)
    readers = {}
    for k, n in enumerate(nodes):
        deps = {producer[i] for i in n.input if i in producer}
        waiting[k] = len(deps)
        for d in deps:
            readers.setdefault(d, []).append(k)
    ready = [k for k in range(len(nodes)) if waiting[k] == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        k = heapq.heappop(ready)
        order.append(k)
        for r in readers.get(k, []):
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    if len(order) != len(nodes):
        raise ValueError("the graph has a cycle")
    del graph.node[:]
    graph.node.extend(nodes[k] for k in order)


def _is_weight_pair(node, values) -> bool:
    """Whether a QuantizeLinear/DequantizeLinear node is a weight's (its input a constant, or its scale a
    per-output-channel vector) rather than an activation's (per tensor)."""
    scale = values.get(node.input[1])
    return node.input[0] in values or (scale is not None and scale.size > 1)


def qdq_facts(model) -> dict:
    """Counts of Q/DQ nodes and the types and zero points of their activation and weight sides."""
    graph = model.graph
    values = _const_values(graph)
    acts, weights = Counter(), Counter()
    for n in graph.node:
        if n.op_type != "DequantizeLinear":
            continue
        zp = values.get(n.input[2]) if len(n.input) > 2 else None
        if zp is None:
            key = "no zero point"
        else:
            values_zp = set(np.asarray(zp).ravel().tolist())
            kind = "zero point 0" if values_zp == {0} else "zero point 128" if values_zp == {128} else "asymmetric"
            key = f"{zp.dtype} {kind}"
        (weights if _is_weight_pair(n, values) else acts)[key] += 1
    ops = Counter(n.op_type for n in graph.node)
    return {"quantize_linear": ops["QuantizeLinear"], "dequantize_linear": ops["DequantizeLinear"],
            "activation_pairs": dict(acts), "weight_dequantizers": dict(weights)}

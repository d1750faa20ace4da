#!/usr/bin/env python3
"""Build a TensorRT engine from this bundle's ONNX with TensorRT's Python API (shipped by rtdetr-edge).

Reads engine_config.json (written at export from the target's recipe): the ONNX file, precision, workspace,
TF32, the layers that must stay FP32, DLA, and the timing cache. Any of them can be overridden here.
Written for TensorRT 8.5 to 10.x (build_serialized_network, set_memory_pool_limit, tensor names) with the
fallbacks TensorRT 8.2 needs; standalone (tensorrt only) and Python 3.6 compatible, so it runs with the
Python that JetPack ships.

    python3 build_engine.py                     # as the recipe says
    python3 build_engine.py --precision fp32 --out model_fp32.engine
"""

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def parse_args(cfg):
    p = argparse.ArgumentParser(description="Build a TensorRT engine from this bundle's ONNX")
    p.add_argument("--onnx", default=os.path.join(HERE, cfg["onnx"]))
    p.add_argument("--out", default=os.path.join(HERE, cfg["engine"]))
    p.add_argument("--precision", default=cfg["precision"], choices=["fp32", "fp16", "int8"])
    p.add_argument("--workspace-mb", type=int, default=cfg["workspace_mb"])
    p.add_argument("--dla-core", type=int, default=cfg.get("dla_core"))
    p.add_argument("--allow-tf32", action="store_true", help="leave TF32 on (the recipe turns it off)")
    p.add_argument("--timing-cache", default=os.path.join(HERE, cfg["timing_cache"]))
    return p.parse_args()


def fp32_layer(name, scopes):
    return any(name == s or name.startswith(s + "/") for s in scopes)


def main():
    with open(os.path.join(HERE, "engine_config.json")) as f:
        cfg = json.load(f)
    args = parse_args(cfg)
    import tensorrt as trt

    major = int(trt.__version__.split(".")[0])
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    with open(args.onnx, "rb") as f:
        if not parser.parse(f.read()):
            for i in range(parser.num_errors):
                print("parser error:", parser.get_error(i), file=sys.stderr)
            sys.exit("error: TensorRT %s could not parse %s" % (trt.__version__, args.onnx))
    config = builder.create_builder_config()
    if hasattr(config, "set_memory_pool_limit"):
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, args.workspace_mb << 20)
    else:  # TensorRT 8.2
        config.max_workspace_size = args.workspace_mb << 20
    if not args.allow_tf32 and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    pinned = 0
    if args.precision == "int8":  # a Q/DQ ONNX (explicit quantization); layers without Q/DQ run FP16
        config.set_flag(trt.BuilderFlag.INT8)
    if args.precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
        scopes = cfg.get("fp32_layer_scopes", [])
        if scopes:
            obey = getattr(trt.BuilderFlag, "OBEY_PRECISION_CONSTRAINTS", None)
            config.set_flag(obey if obey is not None else trt.BuilderFlag.STRICT_TYPES)
            for i in range(network.num_layers):
                layer = network.get_layer(i)
                if fp32_layer(layer.name, scopes):
                    layer.precision = trt.float32
                    for j in range(layer.num_outputs):
                        if layer.get_output(j).dtype == trt.float32 or layer.get_output(j).dtype == trt.float16:
                            layer.set_output_type(j, trt.float32)
                    pinned += 1
    if cfg.get("profile"):  # a dynamic-batch ONNX: one optimisation profile (min / opt / max batch)
        profile = builder.create_optimization_profile()
        for name in cfg["profile"]["min"]:
            profile.set_shape(name, *(tuple(cfg["profile"][k][name]) for k in ("min", "opt", "max")))
        config.add_optimization_profile(profile)
    if args.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = args.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    cache = None
    if hasattr(config, "create_timing_cache"):
        blob = b""
        if os.path.isfile(args.timing_cache):
            with open(args.timing_cache, "rb") as f:
                blob = f.read()
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, ignore_mismatch=False)
    print("TensorRT %s: building %s (%s%s%s) -> %s" % (
        trt.__version__, os.path.basename(args.onnx), args.precision,
        ", %d layers pinned to FP32" % pinned if pinned else "", ", DLA %d" % args.dla_core
        if args.dla_core is not None else "", args.out))
    start = time.time()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        sys.exit("error: the engine build failed (see TensorRT's messages above)")
    tmp = args.out + ".part"
    with open(tmp, "wb") as f:
        f.write(serialized)
    os.replace(tmp, args.out)
    if cache is not None:
        with open(args.timing_cache, "wb") as f:
            f.write(cache.serialize())
    print("built in %.0f s: %s" % (time.time() - start, args.out))


if __name__ == "__main__":
    main()

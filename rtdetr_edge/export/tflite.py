"""TFLite (LiteRT) through litert-torch: PyTorch -> .tflite without TensorFlow.

The deformable attention is exported with our `gather` sampler (bilinear sampling written with
Gather and arithmetic that TFLite has) unless another is asked for (litert-torch also lowers
grid_sample to gathers). FP16 stores the weights of convolutions and fully connected layers in half
precision, with ai-edge-quantizer's float casting on the FP32 file (the standard TFLite float16
scheme: a CPU dequantizes them and computes in FP32, a GPU delegate computes in FP16). litert-torch's
own quant_config path fails in 0.10.0 ('QuantConfig' object has no attribute 'verify').
Inputs stay NCHW. The int64 `orig_target_sizes` input becomes int32 in the file.
"""

import contextlib
import logging
import os
import sys
import tempfile
import warnings

log = logging.getLogger("rtdetr_edge")


@contextlib.contextmanager
def converter_output_to_log():
    """litert-torch, JAX and the MLIR passes print hundreds of progress/INFO lines on the process's own
    stdout/stderr: send them to a temp log; on failure, replay its tail so the cause is visible."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as logf:
        os.dup2(logf.fileno(), 1)
        os.dup2(logf.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            logf.seek(0)
            tail = logf.read().decode(errors="replace").splitlines()[-40:]
            print("\n".join(["--- litert-torch output (last lines) ---"] + tail), file=sys.stderr)
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def write(module, path, example_inputs, cfg, raw=False) -> dict:
    """The format registry's entry point (fixed shapes: the example's batch is the file's batch)."""
    return export_tflite(module, path, example_inputs, cfg.precision)


def export_tflite(module, path, example_inputs, precision="fp32") -> dict:
    with converter_output_to_log():
        return _export_tflite(module, path, example_inputs, precision)


def _export_tflite(module, path, example_inputs, precision):
    import litert_torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        edge = litert_torch.convert(module.eval(), tuple(example_inputs))
    facts = {"converter": "litert-torch"}
    if precision == "fp32":
        edge.export(str(path))
        return facts
    if precision != "fp16":
        raise ValueError(f"tflite: no writer for precision {precision!r}")
    from ..fsutil import scratch

    with scratch(path) as tmp:
        fp32 = tmp / "fp32.tflite"
        edge.export(str(fp32))
        facts.update(cast_fp16(fp32, path))
    return facts


def cast_fp16(fp32_path, path) -> dict:
    """FP16 weights from an FP32 .tflite (the standard float16 scheme), written at `path`."""
    from ai_edge_quantizer import qtyping, quantizer

    with converter_output_to_log():
        qt = quantizer.Quantizer(str(fp32_path))
        qt.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                  algorithm_key="float_casting")
        qt.quantize(enable_progress_report=False).export_model(str(path), overwrite=True)
    return {"fp16": "ai-edge-quantizer float_casting (FP16 weights of CONV_2D/FULLY_CONNECTED)"}

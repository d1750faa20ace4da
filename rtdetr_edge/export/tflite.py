"""TFLite (LiteRT) through litert-torch: PyTorch -> .tflite without TensorFlow.

The deformable attention is exported with our `gather` sampler (bilinear sampling written with
Gather and arithmetic that TFLite has) unless another is asked for (litert-torch also lowers
grid_sample to gathers). FP16 stores the weights of convolutions and fully connected layers in half
precision, with ai-edge-quantizer's float casting on the FP32 file (the standard TFLite float16
scheme: a CPU dequantizes them and computes in FP32, a GPU delegate computes in FP16). litert-torch's
own quant_config path fails in 0.10.0 ('QuantConfig' object has no attribute 'verify').
Inputs stay NCHW. The int64 `orig_target_sizes` input becomes int32 in the file.
"""

import logging
import warnings

log = logging.getLogger("rtdetr_edge")


def export_tflite(module, path, example_inputs, precision="fp32") -> dict:
    import os
    import tempfile

    import litert_torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        edge = litert_torch.convert(module.eval(), tuple(example_inputs))
    facts = {"converter": "litert-torch"}
    if precision != "fp16":
        edge.export(str(path))
        return facts
    from ai_edge_quantizer import qtyping, quantizer

    fd, fp32 = tempfile.mkstemp(suffix=".tflite")
    os.close(fd)
    try:
        edge.export(fp32)
        qt = quantizer.Quantizer(fp32)
        qt.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                                  algorithm_key="float_casting")
        qt.quantize(enable_progress_report=False).export_model(str(path), overwrite=True)
    finally:
        os.unlink(fp32)
    facts["fp16"] = "ai-edge-quantizer float_casting (FP16 weights of CONV_2D/FULLY_CONNECTED)"
    return facts

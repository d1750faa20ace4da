"""TFLite backend: ai_edge_litert's interpreter (the maintained successor of tflite-runtime), falling
back to tflite_runtime where only it is installed (older device images)."""

import numpy as np

from ..errors import UserError
from .base import Runtime


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter, "tflite_runtime"
    except ImportError:
        raise UserError("no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime on old images)") \
            from None


class TFLiteRuntime(Runtime):
    backend = "tflite"

    def __init__(self, path, manifest=None, threads=None):
        super().__init__(path, manifest)
        if self.precision == "fp16":  # FP16 weights compute in FP16 only where the CPU has FP16 arithmetic
            from ..sysinfo import cpu_info

            if "ARM-FP16" not in cpu_info()["features"]:
                self.effective_precision = "fp32 (fp16 weights; this CPU has no FP16 arithmetic)"
        cls, self.interpreter_name = _interpreter_class()
        try:
            self.interp = cls(model_path=str(path), num_threads=threads)
            self.interp.allocate_tensors()
        except Exception as e:
            raise UserError(f"{path}: the TFLite interpreter cannot load it ({str(e).splitlines()[0][:200]})") \
                from None
        self.inputs = self.interp.get_input_details()
        self.outputs = self.interp.get_output_details()
        self.raw = len(self.inputs) == 1
        if self.imgsz is None:
            shape = self.inputs[0]["shape"]
            self.imgsz = (int(shape[2]), int(shape[3]))
            self.batch = int(shape[0])

    def _run(self, images, sizes):
        # litert-torch keeps the argument order: images first, then orig_target_sizes
        self.interp.set_tensor(self.inputs[0]["index"], images.astype(self.inputs[0]["dtype"]))
        if not self.raw:
            self.interp.set_tensor(self.inputs[1]["index"], sizes.astype(self.inputs[1]["dtype"]))
        self.interp.invoke()
        outs = [self.interp.get_tensor(o["index"]) for o in self.outputs]
        if not self.raw:
            labels, boxes, scores = outs
            return labels.astype(np.int64), boxes, scores
        return tuple(outs)

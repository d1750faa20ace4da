"""onnxruntime backend (CPU; CUDA/TensorRT providers when installed and asked for)."""

import numpy as np

from ..errors import UserError
from .base import Runtime
from ..vocab import INPUT_IMAGES, INPUT_SIZES


class OnnxRuntime(Runtime):
    backend = "onnxruntime"

    def __init__(self, path, manifest=None, providers=None, threads=None):
        super().__init__(path, manifest)
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])
        except Exception as e:
            raise UserError(f"{path}: onnxruntime cannot load it ({str(e).splitlines()[0][:200]})") from None
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.raw = INPUT_SIZES not in inputs
        shape = inputs[INPUT_IMAGES].shape
        if self.imgsz is None:
            self.imgsz = (int(shape[2]), int(shape[3]))
            self.batch = shape[0] if isinstance(shape[0], int) else "dynamic"
        self.sizes_dtype = np.int32 if "int32" in inputs.get(INPUT_SIZES, inputs[INPUT_IMAGES]).type else np.int64

    def _run(self, images, sizes):
        feeds = {INPUT_IMAGES: images}
        if not self.raw:
            feeds[INPUT_SIZES] = sizes.astype(self.sizes_dtype)
        return tuple(self.session.run(None, feeds))

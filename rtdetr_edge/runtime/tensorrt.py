"""TensorRT backend for Jetson / NVIDIA GPUs (imported lazily; nothing here runs without TensorRT).

Written against the tensor-name API (num_io_tensors, set_input_shape, set_tensor_address,
execute_async_v3), which covers TensorRT 8.5 to 10.x. Device buffers through PyTorch's CUDA tensors.
"""

import numpy as np

from ..errors import UserError
from .base import Runtime


class TensorRTRuntime(Runtime):
    backend = "tensorrt"

    def __init__(self, path, manifest=None):
        super().__init__(path, manifest)
        try:
            import tensorrt as trt
            import torch
        except ImportError:
            raise UserError("TensorRT is not installed here (it comes with JetPack on Jetson devices)") from None
        if not torch.cuda.is_available():
            raise UserError("TensorRT needs a CUDA device; none is available")
        self.torch = torch
        logger = trt.Logger(trt.Logger.WARNING)
        with open(path, "rb") as f:
            self.engine = trt.Runtime(logger).deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise UserError(f"{path}: TensorRT cannot deserialize this engine (built for another version/GPU?)")
        self.context = self.engine.create_execution_context()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.trt = trt
        if self.imgsz is None:
            shape = self.engine.get_tensor_shape("images")
            self.imgsz = (int(shape[2]), int(shape[3]))
            self.batch = int(shape[0]) if shape[0] > 0 else "dynamic"

    def _run(self, images, sizes):
        torch, trt = self.torch, self.trt
        feeds = {"images": torch.from_numpy(images).cuda(),
                 "orig_target_sizes": torch.from_numpy(sizes).cuda()}
        outputs = {}
        for name in self.names:
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                t = feeds[name]
                dtype = trt.nptype(self.engine.get_tensor_dtype(name))
                t = t.to(getattr(torch, np.dtype(dtype).name)).contiguous()
                feeds[name] = t
                self.context.set_input_shape(name, tuple(t.shape))
                self.context.set_tensor_address(name, t.data_ptr())
        for name in self.names:
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
                shape = tuple(self.context.get_tensor_shape(name))
                dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
                outputs[name] = torch.empty(shape, dtype=getattr(torch, dtype.name), device="cuda")
                self.context.set_tensor_address(name, outputs[name].data_ptr())
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return tuple(outputs[n].cpu().numpy() for n in ("labels", "boxes", "scores"))

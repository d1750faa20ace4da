"""TensorRT backend for Jetson / NVIDIA GPUs (imported lazily; nothing here runs without TensorRT).

Written against the tensor-name API (num_io_tensors, set_input_shape, set_tensor_address,
execute_async_v3), which covers TensorRT 8.5 to 10.x. Device memory through cuda-python's runtime API
(`cuda.bindings.runtime`, or `cuda.cudart` in older cuda-python): no PyTorch, which has no CUDA build of
2.13 for Jetson. Not exercised on a GPU in the test suite (no GPU in CI).
"""

import numpy as np

from ..errors import UserError
from ..vocab import INPUT_IMAGES, INPUT_SIZES, OUTPUT_NAMES, RAW_OUTPUT_NAMES
from .base import Runtime


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise UserError("cuda-python is not installed: pip install cuda-python (TensorRT's Python samples "
                            "use it too)") from None
    return cudart


def _check(result):
    """cuda-python returns (error, *values): raise on an error, return the values."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return values[0] if len(values) == 1 else values


class TensorRTRuntime(Runtime):
    backend = "tensorrt"

    def __init__(self, path, manifest=None, threads=None):  # threads: CPU runtimes only; a GPU ignores it
        super().__init__(path, manifest)
        try:
            import tensorrt as trt
        except ImportError:
            raise UserError("TensorRT is not installed here (it comes with JetPack on Jetson devices)") from None
        self.trt, self.cudart = trt, _cudart()
        if _check(self.cudart.cudaGetDeviceCount()) < 1:
            raise UserError("TensorRT needs a CUDA device; none is available")
        logger = trt.Logger(trt.Logger.WARNING)
        with open(path, "rb") as f:
            self.engine = trt.Runtime(logger).deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise UserError(f"{path}: TensorRT cannot deserialize this engine (built for another version/GPU?)")
        self.context = self.engine.create_execution_context()
        self.names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in self.names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.raw = INPUT_SIZES not in self.inputs
        self.stream = _check(self.cudart.cudaStreamCreate())
        self.buffers = {}  # name -> (device pointer, bytes)
        if self.imgsz is None:
            shape = self.engine.get_tensor_shape(INPUT_IMAGES)
            self.imgsz = (int(shape[2]), int(shape[3]))
            self.batch = int(shape[0]) if shape[0] > 0 else "dynamic"

    def _device(self, name, nbytes):
        ptr, size = self.buffers.get(name, (None, 0))
        if size < nbytes:
            if ptr is not None:
                _check(self.cudart.cudaFree(ptr))
            ptr = _check(self.cudart.cudaMalloc(nbytes))
            self.buffers[name] = (ptr, nbytes)
        return ptr

    def _run(self, images, sizes):
        trt, cudart = self.trt, self.cudart
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        feeds = {INPUT_IMAGES: images, INPUT_SIZES: sizes}
        for name in self.inputs:
            host = np.ascontiguousarray(feeds[name], dtype=trt.nptype(self.engine.get_tensor_dtype(name)))
            feeds[name] = host  # kept alive until the copy is done
            self.context.set_input_shape(name, host.shape)
            ptr = self._device(name, host.nbytes)
            _check(cudart.cudaMemcpyAsync(ptr, host.ctypes.data, host.nbytes, h2d, self.stream))
            self.context.set_tensor_address(name, int(ptr))
        outputs = {}
        for name in self.names:
            if name in self.inputs:
                continue
            shape = tuple(self.context.get_tensor_shape(name))
            outputs[name] = np.empty(shape, dtype=trt.nptype(self.engine.get_tensor_dtype(name)))
            self.context.set_tensor_address(name, int(self._device(name, max(outputs[name].nbytes, 1))))
        if not self.context.execute_async_v3(int(self.stream)):
            raise RuntimeError("TensorRT execution failed")
        for name, host in outputs.items():
            _check(cudart.cudaMemcpyAsync(host.ctypes.data, self.buffers[name][0], host.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        order = RAW_OUTPUT_NAMES if self.raw else OUTPUT_NAMES
        return tuple(outputs[n] for n in order)

    def __del__(self):
        cudart = getattr(self, "cudart", None)
        for ptr, _ in getattr(self, "buffers", {}).values():
            cudart.cudaFree(ptr)
        if getattr(self, "stream", None) is not None:
            cudart.cudaStreamDestroy(self.stream)

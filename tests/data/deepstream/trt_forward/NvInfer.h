// Test-only forward declarations standing in for TensorRT's NvInfer.h (not available on this machine).
// nvdsinfer_custom_impl.h names these types in declarations our parser never uses; on the device the real
// TensorRT headers provide them. Nothing here is a TensorRT definition.
#pragma once
#include <cstdint>
namespace nvinfer1 {
enum class DataType : int32_t;
class IBuilder;
class IBuilderConfig;
class ICudaEngine;
class INetworkDefinition;
class IPluginFactory;
}  // namespace nvinfer1

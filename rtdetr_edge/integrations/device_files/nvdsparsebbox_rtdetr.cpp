// rtdetr-edge: DeepStream (Gst-nvinfer) glue for an RT-DETRv2 bundle.
//
// NvDsInferParseCustomRTDETR   the bounding-box parser: the model's own top-k outputs (labels [Q] class index,
//                              boxes [Q,4] xyxy in the pixels of orig_target_sizes, scores [Q] sigmoid, best
//                              first) become nvinfer objects. No NMS (cluster-mode=4): a DETR has no duplicates
//                              to suppress. Per-class pre-cluster thresholds from the config are applied, boxes
//                              are clamped to the network input, empty boxes are dropped.
// NvDsInferInitializeInputLayers
//                              fills the model's second input, orig_target_sizes, with the network's (width,
//                              height) once at start: the boxes then come out in network-input pixels, which
//                              nvinfer scales to each frame (maintain-aspect-ratio=0: the model was trained on
//                              stretched images).
//
// Output types handled: FLOAT and HALF for boxes/scores, INT64, INT32 and FLOAT for labels and
// orig_target_sizes (TensorRT 8.x turns int64 bindings into int32; 10.x keeps int64).
// Built on the device by the Makefile beside this file, against the DeepStream headers there.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <vector>

#include "nvdsinfer_custom_impl.h"

namespace {

const NvDsInferLayerInfo *find_layer(std::vector<NvDsInferLayerInfo> const &layers, const char *name) {
    for (auto const &layer : layers)
        if (layer.layerName && std::strcmp(layer.layerName, name) == 0) return &layer;
    return nullptr;
}

float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff, bits;
    if (exponent == 0) {
        if (mantissa == 0) {
            bits = sign;
        } else {  // subnormal: normalise
            exponent = 127 - 15 + 1;
            while (!(mantissa & 0x400)) { mantissa <<= 1; exponent--; }
            bits = sign | (exponent << 23) | ((mantissa & 0x3ff) << 13);
        }
    } else if (exponent == 31) {
        bits = sign | 0x7f800000 | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

bool read_float(NvDsInferLayerInfo const &layer, unsigned int i, float &out) {
    switch (layer.dataType) {
        case FLOAT: out = static_cast<const float *>(layer.buffer)[i]; return true;
        case HALF: out = half_to_float(static_cast<const uint16_t *>(layer.buffer)[i]); return true;
        default: return false;
    }
}

bool read_index(NvDsInferLayerInfo const &layer, unsigned int i, int64_t &out) {
    switch (layer.dataType) {
        case INT64: out = static_cast<const int64_t *>(layer.buffer)[i]; return true;
        case INT32: out = static_cast<const int32_t *>(layer.buffer)[i]; return true;
        case FLOAT: out = (int64_t)std::lround(static_cast<const float *>(layer.buffer)[i]); return true;
        default: return false;
    }
}

}  // namespace

extern "C" bool NvDsInferParseCustomRTDETR(std::vector<NvDsInferLayerInfo> const &outputLayersInfo,
                                           NvDsInferNetworkInfo const &networkInfo,
                                           NvDsInferParseDetectionParams const &detectionParams,
                                           std::vector<NvDsInferObjectDetectionInfo> &objectList) {
    const NvDsInferLayerInfo *labels = find_layer(outputLayersInfo, "labels");
    const NvDsInferLayerInfo *boxes = find_layer(outputLayersInfo, "boxes");
    const NvDsInferLayerInfo *scores = find_layer(outputLayersInfo, "scores");
    if (!labels || !boxes || !scores) {
        std::cerr << "rtdetr parser: the model needs outputs labels, boxes and scores "
                     "(output-blob-names=labels;boxes;scores)" << std::endl;
        return false;
    }
    unsigned int n = scores->inferDims.numElements;
    if (labels->inferDims.numElements != n || boxes->inferDims.numElements != 4 * n) {
        std::cerr << "rtdetr parser: labels/boxes/scores hold " << labels->inferDims.numElements << "/"
                  << boxes->inferDims.numElements << "/" << n << " values; expected Q/4Q/Q" << std::endl;
        return false;
    }
    const float width = (float)networkInfo.width, height = (float)networkInfo.height;
    for (unsigned int i = 0; i < n; i++) {
        float score, x0, y0, x1, y1;
        int64_t cls;
        if (!read_float(*scores, i, score) || !read_index(*labels, i, cls) || !read_float(*boxes, 4 * i, x0) ||
            !read_float(*boxes, 4 * i + 1, y0) || !read_float(*boxes, 4 * i + 2, x1) ||
            !read_float(*boxes, 4 * i + 3, y1)) {
            std::cerr << "rtdetr parser: unsupported output data type" << std::endl;
            return false;
        }
        if (cls < 0 || cls >= (int64_t)detectionParams.numClassesConfigured || !std::isfinite(score)) continue;
        if (score < detectionParams.perClassPreclusterThreshold[cls]) continue;
        x0 = std::min(std::max(x0, 0.0f), width);
        x1 = std::min(std::max(x1, 0.0f), width);
        y0 = std::min(std::max(y0, 0.0f), height);
        y1 = std::min(std::max(y1, 0.0f), height);
        if (!(x1 > x0) || !(y1 > y0)) continue;
        NvDsInferObjectDetectionInfo object{};
        object.classId = (unsigned int)cls;
        object.left = x0;
        object.top = y0;
        object.width = x1 - x0;
        object.height = y1 - y0;
        object.detectionConfidence = score;
        objectList.push_back(object);
    }
    return true;
}

extern "C" bool NvDsInferInitializeInputLayers(std::vector<NvDsInferLayerInfo> const &inputLayersInfo,
                                               NvDsInferNetworkInfo const &networkInfo, unsigned int maxBatchSize) {
    const NvDsInferLayerInfo *sizes = find_layer(inputLayersInfo, "orig_target_sizes");
    if (!sizes || sizes->inferDims.numElements != 2) {
        std::cerr << "rtdetr parser: the model's second input must be orig_target_sizes [N,2]" << std::endl;
        return false;
    }
    for (unsigned int b = 0; b < maxBatchSize; b++) {
        switch (sizes->dataType) {
            case INT64: {
                int64_t *p = static_cast<int64_t *>(sizes->buffer) + 2 * b;
                p[0] = networkInfo.width;
                p[1] = networkInfo.height;
                break;
            }
            case INT32: {
                int32_t *p = static_cast<int32_t *>(sizes->buffer) + 2 * b;
                p[0] = (int32_t)networkInfo.width;
                p[1] = (int32_t)networkInfo.height;
                break;
            }
            case FLOAT: {
                float *p = static_cast<float *>(sizes->buffer) + 2 * b;
                p[0] = (float)networkInfo.width;
                p[1] = (float)networkInfo.height;
                break;
            }
            default:
                std::cerr << "rtdetr parser: unsupported orig_target_sizes data type" << std::endl;
                return false;
        }
    }
    return true;
}

CHECK_CUSTOM_PARSE_FUNC_PROTOTYPE(NvDsInferParseCustomRTDETR);

// Test harness: loads a custom nvinfer library the way Gst-nvinfer does (dlopen, dlsym of the names the
// config gives), feeds it a model's outputs from raw files, prints what it parsed.
//   harness LIB PARSE_FUNC WIDTH HEIGHT NUM_CLASSES THRESHOLD Q LABELS_TYPE(int64|int32) LABELS BOXES SCORES
//           FLOAT_TYPE(float|half)
// prints one line per object: class score left top width height; then "sizes" and the orig_target_sizes the
// library wrote for a batch of 3.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "nvdsinfer_custom_impl.h"

static std::vector<char> slurp(const char *path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}

static NvDsInferLayerInfo layer(const char *name, NvDsInferDataType type, unsigned int n, void *buffer) {
    NvDsInferLayerInfo info{};
    info.dataType = type;
    info.inferDims.numDims = 1;
    info.inferDims.d[0] = n;
    info.inferDims.numElements = n;
    info.layerName = name;
    info.buffer = buffer;
    return info;
}

int main(int argc, char **argv) {
    if (argc != 13) {
        std::fprintf(stderr, "usage: see the top of harness.cpp\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    auto parse = (NvDsInferParseCustomFunc)dlsym(lib, argv[2]);
    typedef bool (*InitFunc)(std::vector<NvDsInferLayerInfo> const &, NvDsInferNetworkInfo const &, unsigned int);
    auto init = (InitFunc)dlsym(lib, "NvDsInferInitializeInputLayers");
    if (!parse || !init) {
        std::fprintf(stderr, "dlsym: %s or NvDsInferInitializeInputLayers missing\n", argv[2]);
        return 1;
    }
    NvDsInferNetworkInfo net{(unsigned int)std::atoi(argv[3]), (unsigned int)std::atoi(argv[4]), 3};
    unsigned int classes = std::atoi(argv[5]), q = std::atoi(argv[7]);
    float threshold = std::atof(argv[6]);
    bool int64_labels = std::string(argv[8]) == "int64", half = std::string(argv[12]) == "half";
    std::vector<char> labels = slurp(argv[9]), boxes = slurp(argv[10]), scores = slurp(argv[11]);
    std::vector<NvDsInferLayerInfo> outputs = {
        layer("scores", half ? HALF : FLOAT, q, scores.data()),
        layer("labels", int64_labels ? INT64 : INT32, q, labels.data()),
        layer("boxes", half ? HALF : FLOAT, 4 * q, boxes.data()),
    };
    NvDsInferParseDetectionParams params;
    params.numClassesConfigured = classes;
    params.perClassPreclusterThreshold.assign(classes, threshold);
    params.perClassPostclusterThreshold.assign(classes, 0.0f);
    std::vector<NvDsInferObjectDetectionInfo> objects;
    if (!parse(outputs, net, params, objects)) return 1;
    for (auto const &o : objects)
        std::printf("%u %.9g %.9g %.9g %.9g %.9g\n", o.classId, o.detectionConfidence, o.left, o.top, o.width,
                    o.height);
    std::vector<long long> sizes(6, -1);
    std::vector<NvDsInferLayerInfo> inputs = {layer("orig_target_sizes", INT64, 2, sizes.data())};
    if (!init(inputs, net, 3)) return 1;
    std::printf("sizes");
    for (long long v : sizes) std::printf(" %lld", v);
    std::printf("\n");
    return 0;
}

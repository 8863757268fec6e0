// The two graphs an artifact serves with (embedding + head, or detection + box embedding), in
// one format: ONNX graphs run by ONNX Runtime (CPU; when the build found it), AOTInductor packages
// (compiled ahead of time, CPU) or TorchScript. Internal to the library (needs torch).
#pragma once
#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include "repmet/artifact.h"

#ifdef REPMET_WITH_ONNXRUNTIME
#include "onnx_graph.h"
#endif

namespace repmet {

class GraphPair {
 public:
  // format "auto", on the CPU the first the artifact has of int8 and onnx (when built with ONNX
  // Runtime), aoti, torchscript; on a GPU torchscript
  static std::unique_ptr<GraphPair> load(const Artifact& artifact, const std::string& device, const std::string& format,
                                         const std::array<std::string, 2>& roles);

  // graph ``which`` (0 or 1) on ``inputs`` -> its outputs (a tuple's elements, or the one tensor);
  // an Error naming metadata.json when the graph refuses them (a graph that does not take what
  // the metadata's preprocessing makes, e.g. 3 channels for a grey model)
  std::vector<torch::Tensor> run(int which, const std::vector<torch::Tensor>& inputs);
  // an NCHW image batch on the device, in the layout the graphs expect
  torch::Tensor images(const torch::Tensor& batch) const;

  const std::string& format() const { return format_; }
  const torch::Device& device() const { return device_; }

 private:
  std::vector<torch::Tensor> run_unchecked(int which, const std::vector<torch::Tensor>& inputs);

  torch::Device device_{torch::kCPU};
  std::string format_, folder_;
  std::array<std::string, 2> roles_;
  std::array<torch::jit::Module, 2> scripted_;
  std::array<std::unique_ptr<torch::inductor::AOTIModelPackageLoader>, 2> compiled_;
  // per AOTInductor package, its inputs' sizes as [lo, hi] (lo == hi when fixed), read from the
  // package's own metadata: compiled code handed another shape reads past its buffers
  using Shape = std::vector<std::pair<int64_t, int64_t>>;
  std::array<std::vector<Shape>, 2> compiled_shapes_;
#ifdef REPMET_WITH_ONNXRUNTIME
  std::array<std::unique_ptr<OnnxGraph>, 2> onnx_;
#endif
};

}  // namespace repmet

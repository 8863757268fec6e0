// One ONNX graph run by ONNX Runtime on the CPU (the library the Python runtime's onnxruntime
// backend runs, with the same session options), taking and giving torch tensors. Internal to
// the library; compiled only when CMake found ONNX Runtime (REPMET_WITH_ONNXRUNTIME).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace repmet {

class OnnxGraph {
 public:
  // an Error naming ``path`` when it is not a graph ONNX Runtime loads, or when the library is
  // older than the API the runtime was compiled against
  explicit OnnxGraph(const std::string& path);
  ~OnnxGraph();
  OnnxGraph(const OnnxGraph&) = delete;
  OnnxGraph& operator=(const OnnxGraph&) = delete;

  // the graph's inputs in its own order (float32 or int64, any layout: made contiguous) -> its
  // outputs in order, copied out; std::invalid_argument or ONNX Runtime's exception when refused
  std::vector<torch::Tensor> run(const std::vector<torch::Tensor>& inputs);

 private:
  struct Session;
  std::unique_ptr<Session> session_;
};

}  // namespace repmet

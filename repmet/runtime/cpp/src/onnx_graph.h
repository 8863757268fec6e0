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
  // older than the API the runtime was compiled against. Each graph has its own intra-op thread
  // pool; ``spin``: its threads spin for a while after a run (ONNX Runtime's default), for the
  // graph that runs most. A graph run after it (the distance head) or rarely (the box embedding)
  // must not: its spinning threads would take the cores from the busy graph's (the Python
  // backend's rule too; measured on 2 cores: Flowers batch 1 7.3 -> 3.7 ms per image).
  OnnxGraph(const std::string& path, bool spin);
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

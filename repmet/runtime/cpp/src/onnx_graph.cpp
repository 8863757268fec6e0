#include "onnx_graph.h"

#include <mutex>
#include <stdexcept>

#include <onnxruntime_cxx_api.h>

#include "repmet/errors.h"

namespace repmet {
namespace {

// Asks the library for the API the headers describe, once; an older library answers null.
void init_api() {
  static std::once_flag once;
  static const OrtApi* api = nullptr;
  std::call_once(once, [] {
    api = OrtGetApiBase()->GetApi(ORT_API_VERSION);
    if (api != nullptr) Ort::InitApi(api);
  });
  if (api == nullptr) {
    fail(std::string("the ONNX Runtime library found at run time (") + OrtGetApiBase()->GetVersionString() +
         ") is older than the one the runtime was built for (API " + std::to_string(ORT_API_VERSION) +
         "); pip install -U onnxruntime, or use format aoti or torchscript");
  }
}

// One environment a process (ONNX Runtime's rule), made when the first graph loads.
Ort::Env& environment() {
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "repmet");
  return env;
}

Ort::Value as_ort(const torch::Tensor& tensor, const Ort::MemoryInfo& memory) {
  std::vector<int64_t> shape(tensor.sizes().begin(), tensor.sizes().end());
  if (tensor.scalar_type() == torch::kFloat32) {
    return Ort::Value::CreateTensor<float>(memory, tensor.data_ptr<float>(), tensor.numel(), shape.data(), shape.size());
  }
  if (tensor.scalar_type() == torch::kInt64) {
    return Ort::Value::CreateTensor<int64_t>(memory, tensor.data_ptr<int64_t>(), tensor.numel(), shape.data(), shape.size());
  }
  throw std::invalid_argument(std::string("an input of type ") + c10::toString(tensor.scalar_type()) +
                              " (the onnx graphs take float32 and int64)");
}

// The output's own memory, kept alive by the tensor: no copy (a torch copy of a large output
// would start libtorch's OpenMP threads, which then spin beside ONNX Runtime's on few cores).
torch::Tensor as_torch(Ort::Value&& output) {
  auto value = std::make_unique<Ort::Value>(std::move(output));
  const auto info = value->GetTensorTypeAndShapeInfo();
  const std::vector<int64_t> shape = info.GetShape();
  torch::ScalarType type;
  switch (info.GetElementType()) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT: type = torch::kFloat32; break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64: type = torch::kInt64; break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32: type = torch::kInt32; break;
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL: type = torch::kBool; break;
    default: throw std::invalid_argument("an output of an element type the runtime does not read");
  }
  void* data = value->GetTensorMutableRawData();
  Ort::Value* owner = value.release();
  return torch::from_blob(data, shape, [owner](void*) { delete owner; }, torch::TensorOptions().dtype(type));
}

}  // namespace

struct OnnxGraph::Session {
  Ort::Session session{nullptr};
  std::vector<std::string> input_names, output_names;
};

OnnxGraph::OnnxGraph(const std::string& path, bool spin) : session_(std::make_unique<Session>()) {
  init_api();
  try {
    Ort::SessionOptions options;
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);  // as the Python backend
    if (!spin) options.AddConfigEntry("session.intra_op.allow_spinning", "0");
    session_->session = Ort::Session(environment(), path.c_str(), options);
    Ort::AllocatorWithDefaultOptions allocator;
    for (size_t i = 0; i < session_->session.GetInputCount(); ++i) {
      session_->input_names.emplace_back(session_->session.GetInputNameAllocated(i, allocator).get());
    }
    for (size_t i = 0; i < session_->session.GetOutputCount(); ++i) {
      session_->output_names.emplace_back(session_->session.GetOutputNameAllocated(i, allocator).get());
    }
  } catch (const Ort::Exception& error) {
    fail("ONNX Runtime cannot load " + path + " (" + brief(error.what()) + "); export it again with metric-export --format onnx");
  }
}

OnnxGraph::~OnnxGraph() = default;

std::vector<torch::Tensor> OnnxGraph::run(const std::vector<torch::Tensor>& inputs) {
  if (inputs.size() != session_->input_names.size()) {
    throw std::invalid_argument("the graph takes " + std::to_string(session_->input_names.size()) + " inputs");
  }
  const auto memory = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  std::vector<torch::Tensor> held;  // contiguous CPU copies outlive the run that reads them in place
  std::vector<Ort::Value> values;
  std::vector<const char*> input_names, output_names;
  for (size_t i = 0; i < inputs.size(); ++i) {
    held.push_back(inputs[i].to(torch::kCPU).contiguous());
    values.push_back(as_ort(held.back(), memory));
    input_names.push_back(session_->input_names[i].c_str());
  }
  for (const auto& name : session_->output_names) output_names.push_back(name.c_str());
  auto outputs = session_->session.Run(Ort::RunOptions{nullptr}, input_names.data(), values.data(), values.size(),
                                       output_names.data(), output_names.size());
  std::vector<torch::Tensor> result;
  for (auto& output : outputs) result.push_back(as_torch(std::move(output)));
  return result;
}

}  // namespace repmet

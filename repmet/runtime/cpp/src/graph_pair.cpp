#include "graph_pair.h"

#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include "repmet/errors.h"

namespace repmet {
namespace {

// metric-export --format int8 writes its ONNX graphs under this key of metadata.json's graphs
const char* const kInt8Key = "onnx_int8";

#ifdef REPMET_WITH_ONNXRUNTIME
constexpr bool kWithOnnxRuntime = true;
#else
constexpr bool kWithOnnxRuntime = false;
#endif

// The key that repmet's exporter stores each AOTInductor package's input shapes under (as JSON:
// one list per input, each size an integer or [lo, hi]); repmet/export/formats/aoti/input_shapes.py.
const char* const kInputShapesKey = "repmet.input_shapes";

std::vector<std::vector<std::pair<int64_t, int64_t>>> stored_input_shapes(
    torch::inductor::AOTIModelPackageLoader& package, const std::string& path) {
  const std::string refusal = path + " does not record the input shapes it was compiled for (an older repmet made "
                              "it, or it was edited); export the artifact again with metric-export --format aoti";
  const auto metadata = package.get_metadata();
  const auto entry = metadata.find(kInputShapesKey);
  if (entry == metadata.end()) fail(refusal);
  const nlohmann::json shapes = nlohmann::json::parse(entry->second, nullptr, /*allow_exceptions=*/false);
  if (!shapes.is_array()) fail(refusal);
  std::vector<std::vector<std::pair<int64_t, int64_t>>> result;
  for (const auto& shape : shapes) {
    if (!shape.is_array()) fail(refusal);
    auto& sizes = result.emplace_back();
    for (const auto& size : shape) {
      if (size.is_number_integer()) {
        sizes.emplace_back(size.get<int64_t>(), size.get<int64_t>());
      } else if (size.is_array() && size.size() == 2 && size[0].is_number_integer() && size[1].is_number_integer()) {
        sizes.emplace_back(size[0].get<int64_t>(), size[1].get<int64_t>());
      } else {
        fail(refusal);
      }
    }
  }
  return result;
}

std::string shape_text(const std::vector<std::pair<int64_t, int64_t>>& shape) {
  std::string text;
  for (const auto& [low, high] : shape) {
    text += (text.empty() ? "" : ", ") + (low == high ? std::to_string(low) : std::to_string(low) + ".." + std::to_string(high));
  }
  return "[" + text + "]";
}

torch::Device parse_device(const std::string& device) {
  std::optional<torch::Device> parsed;
  try {
    parsed.emplace(device);
  } catch (const c10::Error&) {
    fail("device '" + device + "' is not a device; use 'cpu' or 'cuda' (or 'cuda:N')");
  }
  if (parsed->is_cuda() && !torch::cuda::is_available()) {
    fail("device '" + device + "' needs a CUDA GPU and the runtime built with -DREPMET_CUDA=ON; use device 'cpu'");
  }
  return *parsed;
}

}  // namespace

std::unique_ptr<GraphPair> GraphPair::load(const Artifact& artifact, const std::string& device, const std::string& format,
                                           const std::array<std::string, 2>& roles) {
  auto pair = std::make_unique<GraphPair>();
  pair->device_ = parse_device(device);
  pair->format_ = format;
  pair->folder_ = artifact.folder(), pair->roles_ = roles;
  const auto& graphs = artifact.metadata()["graphs"];
  if (format == "auto") {
    pair->format_ = "torchscript";
    if (pair->device_.is_cpu() && graphs.contains("aoti")) pair->format_ = "aoti";
    if (pair->device_.is_cpu() && kWithOnnxRuntime && graphs.contains("onnx")) pair->format_ = "onnx";
    // as Python's auto: a user who exported int8 graphs did so to run them
    if (pair->device_.is_cpu() && kWithOnnxRuntime && graphs.contains(kInt8Key)) pair->format_ = "int8";
  }
  if (pair->format_ != "aoti" && pair->format_ != "torchscript" && pair->format_ != "onnx" && pair->format_ != "int8") {
    fail("format '" + format + "' is not one the C++ runtime loads; use auto, int8, onnx, aoti or torchscript");
  }
  const bool onnx_graphs = pair->format_ == "onnx" || pair->format_ == "int8";
  if (onnx_graphs && !kWithOnnxRuntime) {
    fail("this build of the C++ runtime has no ONNX Runtime (CMake did not find it: see its message, or build with "
         "-DREPMET_ONNXRUNTIME=ON); use format aoti or torchscript");
  }
  if (pair->format_ != "torchscript" && !pair->device_.is_cpu()) {
    fail("the C++ runtime runs the " + pair->format_ + " graphs of " + artifact.folder() +
         " on the CPU; use device 'cpu' or format 'torchscript'");
  }
  for (int i = 0; i < 2; ++i) {
    std::string path = artifact.graph_file(pair->format_ == "int8" ? kInt8Key : pair->format_, roles[i]);
    try {
      if (onnx_graphs) {
#ifdef REPMET_WITH_ONNXRUNTIME
        pair->onnx_[i] = std::make_unique<OnnxGraph>(path, i == 0);
#endif
      } else if (pair->format_ == "aoti") {
        pair->compiled_[i] = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
        pair->compiled_shapes_[i] = stored_input_shapes(*pair->compiled_[i], path);
      } else {
        // straight onto the device: a frozen graph's weights are constants that .to() would leave behind
        pair->scripted_[i] = torch::jit::load(path, pair->device_);
        pair->scripted_[i].eval();
      }
    } catch (const Error&) {
      throw;
    } catch (const std::exception& error) {  // c10::Error, or std::runtime_error from the AOTInductor loader
      fail("cannot load the " + pair->format_ + " graphs of " + artifact.folder() + " (" + brief(error.what()) +
           "); export it again with metric-export --format " + pair->format_);
    }
  }
  return pair;
}

std::vector<torch::Tensor> GraphPair::run(int which, const std::vector<torch::Tensor>& inputs) {
  std::string shapes;
  for (const auto& input : inputs) shapes += (shapes.empty() ? "" : ", ") + c10::str(input.sizes());
  return translate_errors(
      "the " + roles_[which] + " graph of " + folder_ + " refused its inputs " + shapes, "; " + folder_ +
          "/metadata.json (preprocess, input) does not describe what the graph takes: export the artifact again",
      [&] { return run_unchecked(which, inputs); });
}

std::vector<torch::Tensor> GraphPair::run_unchecked(int which, const std::vector<torch::Tensor>& inputs) {
  std::vector<torch::Tensor> on_device;
  for (const auto& input : inputs) on_device.push_back(input.to(device_));
#ifdef REPMET_WITH_ONNXRUNTIME
  if (onnx_[which]) return onnx_[which]->run(on_device);
#endif
  if (format_ == "aoti") {
    // not Errors: run() adds which graph, the shapes given and what to do
    const auto& shapes = compiled_shapes_[which];
    if (shapes.size() != on_device.size()) {
      throw std::invalid_argument("the package takes " + std::to_string(shapes.size()) + " inputs");
    }
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      bool fits = static_cast<std::size_t>(on_device[i].dim()) == shapes[i].size();
      for (std::size_t d = 0; fits && d < shapes[i].size(); ++d) {
        fits = on_device[i].size(d) >= shapes[i][d].first && on_device[i].size(d) <= shapes[i][d].second;
      }
      if (!fits) throw std::invalid_argument("the package takes input " + std::to_string(i) + " as " + shape_text(shapes[i]));
    }
    return compiled_[which]->run(on_device);
  }
  std::vector<torch::IValue> arguments(on_device.begin(), on_device.end());
  torch::IValue result = scripted_[which].forward(arguments);
  if (result.isTensor()) return {result.toTensor()};
  if (!result.isTuple()) fail("the " + roles_[which] + " graph of " + folder_ + " answered neither a tensor nor a tuple");
  auto tuple = result.toTuple();  // held: elements() refers into it
  std::vector<torch::Tensor> outputs;
  for (const auto& value : tuple->elements()) outputs.push_back(value.toTensor());
  return outputs;
}

torch::Tensor GraphPair::images(const torch::Tensor& batch) const {
  torch::Tensor on_device = batch.to(device_);
  // TorchScript: channels-last, as the Python runtime feeds it; AOTInductor and ONNX: NCHW, as exported
  return format_ == "torchscript" ? on_device.contiguous(torch::MemoryFormat::ChannelsLast) : on_device.contiguous();
}

}  // namespace repmet

#include "graph_pair.h"

#include <torch/cuda.h>

#include "repmet/errors.h"

namespace repmet {
namespace {

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
  if (format == "auto") {
    pair->format_ = artifact.metadata()["graphs"].contains("aoti") && pair->device_.is_cpu() ? "aoti" : "torchscript";
  }
  if (pair->format_ != "aoti" && pair->format_ != "torchscript") {
    fail("format '" + format + "' is not one the C++ runtime loads; use auto, aoti or torchscript");
  }
  if (pair->format_ == "aoti" && !pair->device_.is_cpu()) {
    fail("the aoti graphs of " + artifact.folder() + " were compiled for the CPU; use device 'cpu' or format 'torchscript'");
  }
  for (int i = 0; i < 2; ++i) {
    std::string path = artifact.graph_file(pair->format_, roles[i]);
    try {
      if (pair->format_ == "aoti") {
        pair->compiled_[i] = std::make_unique<torch::inductor::AOTIModelPackageLoader>(path);
      } else {
        // straight onto the device: a frozen graph's weights are constants that .to() would leave behind
        pair->scripted_[i] = torch::jit::load(path, pair->device_);
        pair->scripted_[i].eval();
      }
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
  if (format_ == "aoti") return compiled_[which]->run(on_device);
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
  // TorchScript: channels-last, as the Python runtime feeds it; AOTInductor: NCHW, as compiled
  return format_ == "aoti" ? on_device.contiguous() : on_device.contiguous(torch::MemoryFormat::ChannelsLast);
}

}  // namespace repmet

// "cpu", "cuda", "cuda:N" -> a torch::Device, or an Error that says what to do.
#pragma once
#include <string>

#include <torch/cuda.h>
#include <torch/script.h>

#include "repmet/errors.h"

namespace repmet {

inline torch::Device parse_device(const std::string& device) {
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

}  // namespace repmet

// torchvision::roi_align and torchvision::nms for C++ processes: the detector's TorchScript
// graph calls them by name, and torchvision's own compiled library links libtorch_python,
// which a plain C++ program does not have. These are our CPU implementations of the same
// operations (torchvision's semantics: RoIAlign's sampling grid and border rule, greedy NMS
// by descending score), registered under torchvision's schemas only when no library has
// registered them already (a process that also loads torchvision keeps torchvision's).
#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>

#include <torch/library.h>
#include <torch/torch.h>

#include "repmet/errors.h"

namespace repmet {
namespace {

// One bilinear sample: four positions in the map and their weights (all zero when the sample
// lies more than a pixel outside the map, torchvision's rule).
struct Sample {
  int64_t at[4] = {0, 0, 0, 0};
  float weight[4] = {0, 0, 0, 0};
};

Sample bilinear_sample(int height, int width, float y, float x) {
  Sample s;
  if (y < -1.0f || y > height || x < -1.0f || x > width) return s;
  y = std::max(y, 0.0f), x = std::max(x, 0.0f);
  int y_low = static_cast<int>(y), x_low = static_cast<int>(x), y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1, y = static_cast<float>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1, x = static_cast<float>(x_low);
  } else {
    x_high = x_low + 1;
  }
  float ly = y - y_low, lx = x - x_low, hy = 1.0f - ly, hx = 1.0f - lx;
  s.at[0] = y_low * width + x_low, s.at[1] = y_low * width + x_high;
  s.at[2] = y_high * width + x_low, s.at[3] = y_high * width + x_high;
  s.weight[0] = hy * hx, s.weight[1] = hy * lx, s.weight[2] = ly * hx, s.weight[3] = ly * lx;
  return s;
}

at::Tensor roi_align_cpu(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
                         int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  TORCH_CHECK(input.dim() == 4 && rois.dim() == 2 && rois.size(1) == 5, "roi_align: input [N, C, H, W], rois [K, 5]");
  at::Tensor features = input.to(at::kFloat).contiguous(), boxes = rois.to(at::kFloat).contiguous();
  const int64_t channels = features.size(1), height = features.size(2), width = features.size(3), count = boxes.size(0);
  at::Tensor output = at::zeros({count, channels, pooled_height, pooled_width}, features.options());
  const float* data = features.data_ptr<float>();
  const float* roi = boxes.data_ptr<float>();
  float* out = output.data_ptr<float>();
  const float offset = aligned ? 0.5f : 0.0f;
  const float scale = static_cast<float>(spatial_scale);
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    std::vector<Sample> samples;
    for (int64_t n = begin; n < end; ++n) {
      const float* r = roi + n * 5;
      const int64_t batch = static_cast<int64_t>(r[0]);
      float start_w = r[1] * scale - offset, start_h = r[2] * scale - offset;
      float roi_w = r[3] * scale - offset - start_w, roi_h = r[4] * scale - offset - start_h;
      if (!aligned) roi_w = std::max(roi_w, 1.0f), roi_h = std::max(roi_h, 1.0f);
      const float bin_h = roi_h / pooled_height, bin_w = roi_w / pooled_width;
      const int grid_h = sampling_ratio > 0 ? static_cast<int>(sampling_ratio) : static_cast<int>(std::ceil(roi_h / pooled_height));
      const int grid_w = sampling_ratio > 0 ? static_cast<int>(sampling_ratio) : static_cast<int>(std::ceil(roi_w / pooled_width));
      const float per_bin = static_cast<float>(std::max(grid_h * grid_w, 1));
      // the samples' positions and weights, once per RoI for all channels
      samples.clear();
      for (int64_t ph = 0; ph < pooled_height; ++ph) {
        for (int64_t pw = 0; pw < pooled_width; ++pw) {
          for (int iy = 0; iy < grid_h; ++iy) {
            const float y = start_h + ph * bin_h + (iy + 0.5f) * bin_h / grid_h;
            for (int ix = 0; ix < grid_w; ++ix) {
              const float x = start_w + pw * bin_w + (ix + 0.5f) * bin_w / grid_w;
              samples.push_back(bilinear_sample(static_cast<int>(height), static_cast<int>(width), y, x));
            }
          }
        }
      }
      const int per_cell = grid_h * grid_w;
      for (int64_t c = 0; c < channels; ++c) {
        const float* map = data + (batch * channels + c) * height * width;
        float* cell = out + (n * channels + c) * pooled_height * pooled_width;
        const Sample* s = samples.data();
        for (int64_t bin = 0; bin < pooled_height * pooled_width; ++bin) {
          float sum = 0.0f;
          for (int k = 0; k < per_cell; ++k, ++s) {
            sum += s->weight[0] * map[s->at[0]] + s->weight[1] * map[s->at[1]] + s->weight[2] * map[s->at[2]] +
                   s->weight[3] * map[s->at[3]];
          }
          cell[bin] = sum / per_bin;
        }
      }
    }
  });
  return output.to(input.scalar_type());
}

at::Tensor nms_cpu(const at::Tensor& dets, const at::Tensor& scores, double iou_threshold) {
  TORCH_CHECK(dets.dim() == 2 && dets.size(1) == 4 && scores.dim() == 1, "nms: boxes [N, 4], scores [N]");
  if (dets.size(0) == 0) return at::empty({0}, dets.options().dtype(at::kLong));
  at::Tensor boxes = dets.to(at::kFloat).contiguous();
  at::Tensor order = std::get<1>(scores.sort(/*stable=*/true, /*dim=*/0, /*descending=*/true)).contiguous();
  const int64_t n = boxes.size(0);
  const float* b = boxes.data_ptr<float>();
  const int64_t* o = order.data_ptr<int64_t>();
  std::vector<float> areas(n);
  for (int64_t i = 0; i < n; ++i) areas[i] = (b[i * 4 + 2] - b[i * 4]) * (b[i * 4 + 3] - b[i * 4 + 1]);
  std::vector<char> suppressed(n, 0);
  std::vector<int64_t> kept;
  for (int64_t a = 0; a < n; ++a) {
    const int64_t i = o[a];
    if (suppressed[i]) continue;
    kept.push_back(i);
    for (int64_t z = a + 1; z < n; ++z) {
      const int64_t j = o[z];
      if (suppressed[j]) continue;
      float w = std::max(0.0f, std::min(b[i * 4 + 2], b[j * 4 + 2]) - std::max(b[i * 4], b[j * 4]));
      float h = std::max(0.0f, std::min(b[i * 4 + 3], b[j * 4 + 3]) - std::max(b[i * 4 + 1], b[j * 4 + 1]));
      float inter = w * h;
      if (inter / (areas[i] + areas[j] - inter) > iou_threshold) suppressed[j] = 1;
    }
  }
  return at::tensor(kept, dets.options().dtype(at::kLong));
}

// On CUDA devices: the CPU kernels on copies (correct, not fast; the CUDA kernels are torchvision's)
at::Tensor roi_align_on_copies(const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
                               int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  return roi_align_cpu(input.cpu(), rois.cpu(), spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)
      .to(input.device());
}

at::Tensor nms_on_copies(const at::Tensor& dets, const at::Tensor& scores, double iou_threshold) {
  return nms_cpu(dets.cpu(), scores.cpu(), iou_threshold).to(dets.device());
}

std::unique_ptr<torch::Library> schemas, kernels, cuda_kernels;

}  // namespace

void register_torchvision_ops() {
  static std::once_flag once;
  std::call_once(once, [] {
    auto& dispatcher = c10::Dispatcher::singleton();
    bool has_roi_align = dispatcher.findSchema({"torchvision::roi_align", ""}).has_value();
    bool has_nms = dispatcher.findSchema({"torchvision::nms", ""}).has_value();
    if (has_roi_align && has_nms) return;
    if (has_roi_align != has_nms) fail("torchvision's operators are half registered in this process; load all of torchvision or none");
    schemas = std::make_unique<torch::Library>(torch::Library::FRAGMENT, "torchvision", std::nullopt, __FILE__, __LINE__);
    schemas->def("roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, "
                 "int sampling_ratio, bool aligned) -> Tensor");
    schemas->def("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor");
    kernels = std::make_unique<torch::Library>(torch::Library::IMPL, "torchvision", c10::DispatchKey::CPU, __FILE__, __LINE__);
    kernels->impl("roi_align", TORCH_FN(roi_align_cpu));
    kernels->impl("nms", TORCH_FN(nms_cpu));
    cuda_kernels = std::make_unique<torch::Library>(torch::Library::IMPL, "torchvision", c10::DispatchKey::CUDA, __FILE__, __LINE__);
    cuda_kernels->impl("roi_align", TORCH_FN(roi_align_on_copies));
    cuda_kernels->impl("nms", TORCH_FN(nms_on_copies));
  });
}

}  // namespace repmet

#include "repmet/detection_preprocess.h"

#include <algorithm>
#include <cmath>

namespace repmet {
namespace {

struct Axis {
  std::vector<int> low, high;
  std::vector<float> weight;  // of the high sample
};

Axis bilinear_axis(int size_in, int size_out) {
  Axis axis;
  const float step = static_cast<float>(static_cast<double>(size_in) / size_out);
  for (int i = 0; i < size_out; ++i) {
    float source = std::max((static_cast<float>(i) + 0.5f) * step - 0.5f, 0.0f);
    int low = static_cast<int>(std::floor(source));
    axis.low.push_back(low);
    axis.high.push_back(std::min(low + 1, size_in - 1));
    axis.weight.push_back(source - static_cast<float>(low));
  }
  return axis;
}

}  // namespace

int detection_canvas_size(int max_size) { return (max_size + 31) / 32 * 32; }

Box PreparedImage::to_original(const Box& box) const {
  float rh = static_cast<float>(original_height) / height, rw = static_cast<float>(original_width) / width;
  return {box[0] * rw, box[1] * rh, box[2] * rw, box[3] * rh};
}

Box PreparedImage::to_resized(const Box& box) const {
  float rh = height / static_cast<float>(original_height), rw = width / static_cast<float>(original_width);
  return {box[0] * rw, box[1] * rh, box[2] * rw, box[3] * rh};
}

PreparedImage prepare_detection_image(const Image& rgb, int min_size, int max_size, const std::vector<float>& mean,
                                      const std::vector<float>& std) {
  const int h = rgb.height, w = rgb.width;
  double scale = std::min(static_cast<double>(min_size) / std::min(h, w), static_cast<double>(max_size) / std::max(h, w));
  const int new_h = static_cast<int>(std::floor(h * scale)), new_w = static_cast<int>(std::floor(w * scale));
  PreparedImage prepared;
  prepared.canvas = detection_canvas_size(max_size);
  prepared.height = static_cast<float>(new_h), prepared.width = static_cast<float>(new_w);
  prepared.original_height = h, prepared.original_width = w;
  const int side = prepared.canvas;
  prepared.tensor.assign(static_cast<std::size_t>(3) * side * side, 0.0f);
  Axis rows = bilinear_axis(h, new_h), cols = bilinear_axis(w, new_w);
  std::vector<float> plane(static_cast<std::size_t>(h) * w), vertical(static_cast<std::size_t>(new_h) * w);
  for (int c = 0; c < 3; ++c) {
    for (int i = 0; i < h * w; ++i) plane[i] = (static_cast<float>(rgb.pixels[i * 3 + c]) / 255.0f - mean[c]) / std[c];
    for (int y = 0; y < new_h; ++y) {  // rows first, then columns, as the numpy version
      const float wy = rows.weight[y], keep = 1.0f - wy;
      const float* top = &plane[static_cast<std::size_t>(rows.low[y]) * w];
      const float* bottom = &plane[static_cast<std::size_t>(rows.high[y]) * w];
      for (int x = 0; x < w; ++x) {
        float a = top[x] * keep, b = bottom[x] * wy;  // two roundings, never fused
        vertical[static_cast<std::size_t>(y) * w + x] = a + b;
      }
    }
    float* out = &prepared.tensor[static_cast<std::size_t>(c) * side * side];
    for (int y = 0; y < new_h; ++y) {
      for (int x = 0; x < new_w; ++x) {
        const float wx = cols.weight[x];
        float a = vertical[static_cast<std::size_t>(y) * w + cols.low[x]] * (1.0f - wx);
        float b = vertical[static_cast<std::size_t>(y) * w + cols.high[x]] * wx;
        out[static_cast<std::size_t>(y) * side + x] = a + b;
      }
    }
  }
  return prepared;
}

}  // namespace repmet

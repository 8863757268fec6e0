// The detector's preprocessing, the arithmetic of repmet/runtime/detection_preprocess.py (and
// of torchvision's GeneralizedRCNNTransform) in float32: normalise, scale so that the shorter
// side is min_size unless the longer would pass max_size, bilinear resize (half-pixel
// centres, no antialiasing), zero-pad at the bottom and right to the square canvas.
#pragma once
#include <array>
#include <vector>

#include "repmet/image.h"

namespace repmet {

using Box = std::array<float, 4>;  // x1, y1, x2, y2

struct PreparedImage {
  std::vector<float> tensor;  // [3, canvas, canvas]
  int canvas = 0;
  float height = 0, width = 0;  // the resized image inside the canvas
  int original_height = 0, original_width = 0;
  Box to_original(const Box& box) const;  // resized pixels -> the image's own
  Box to_resized(const Box& box) const;
};

int detection_canvas_size(int max_size);
PreparedImage prepare_detection_image(const Image& rgb, int min_size, int max_size, const std::vector<float>& mean,
                                      const std::vector<float>& std);

}  // namespace repmet

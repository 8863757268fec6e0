// The classifier's preprocessing from the artifact's ``preprocess`` metadata, pixel for pixel
// what the Python runtime does with Pillow: resize (Pillow's separable convolution resampling
// in its fixed-point arithmetic, reimplemented), centre crop (zero padding when smaller),
// optional inversion, x / 255, (x - mean) / std in float32.
#pragma once
#include <string>
#include <vector>

#include "repmet/image.h"

namespace repmet {

struct PreprocessSpec {
  std::string color;  // "L" or "RGB"
  std::string resize;  // "shorter_side" or "exact"
  int resize_to = 0;
  std::string interpolation;  // "bilinear", "bicubic" or "lanczos"
  int crop = 0;
  bool invert = false;
  std::vector<float> mean, std;
  int channels() const { return color == "L" ? 1 : 3; }
};

// Pillow's Image.resize(size, filter) of an 8-bit image.
Image resize_like_pillow(const Image& image, int width, int height, const std::string& interpolation);

// float32 [channels, crop, crop], planar, written to ``out`` (crop * crop * channels values).
void preprocess_into(const Image& image, const PreprocessSpec& spec, float* out);

}  // namespace repmet

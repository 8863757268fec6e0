// Pillow's resampling (Image.resize with a filter) and the classifier's preprocessing.
//
// Pillow resizes in two separable passes, horizontal first (over the rows the vertical pass
// will read), then vertical. For each output pixel it weighs the input pixels under the
// filter's support (widened by the scale when shrinking, which antialiases), normalises the
// weights, turns them into 22-bit fixed point and accumulates 8-bit pixels in integers. The
// same arithmetic here gives the same bytes, hence the same embeddings as the Python runtime.
#include <cmath>
#include <vector>

#include "repmet/errors.h"
#include "repmet/preprocess.h"

namespace repmet {
namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Filter {
  double support;
  double (*weight)(double);
};

double bilinear(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double sinc(double x) {
  if (x == 0.0) return 1.0;
  x *= M_PI;
  return std::sin(x) / x;
}

double lanczos(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

Filter filter_named(const std::string& name) {
  if (name == "bilinear") return {1.0, bilinear};
  if (name == "bicubic") return {2.0, bicubic};
  if (name == "lanczos") return {3.0, lanczos};
  fail("preprocess.interpolation " + name + " is not one of bilinear, bicubic, lanczos");
}

// For each output index: the first input index, how many are used, and their fixed-point weights.
struct Coefficients {
  int size = 0;  // weights per output index
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

Coefficients coefficients(int in_size, int out_size, const Filter& filter) {
  double scale = static_cast<double>(in_size) / out_size;
  double filter_scale = scale < 1.0 ? 1.0 : scale;
  double support = filter.support * filter_scale;
  Coefficients c;
  c.size = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size), c.count.resize(out_size), c.weights.assign(static_cast<std::size_t>(out_size) * c.size, 0);
  std::vector<double> k(c.size);
  for (int xx = 0; xx < out_size; ++xx) {
    double center = (xx + 0.5) * scale;
    double ss = 1.0 / filter_scale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double total = 0.0;
    for (int x = 0; x < xmax; ++x) {
      k[x] = filter.weight((x + xmin - center + 0.5) * ss);
      total += k[x];
    }
    for (int x = 0; x < xmax; ++x) {
      double w = total != 0.0 ? k[x] / total : k[x];
      c.weights[static_cast<std::size_t>(xx) * c.size + x] =
          static_cast<int32_t>(w < 0 ? -0.5 + w * (1 << kPrecisionBits) : 0.5 + w * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin, c.count[xx] = xmax;
  }
  return c;
}

uint8_t clip8(int32_t v) {
  if (v >= (1 << kPrecisionBits << 8)) return 255;
  if (v <= 0) return 0;
  return static_cast<uint8_t>(v >> kPrecisionBits);
}

}  // namespace

Image resize_like_pillow(const Image& image, int width, int height, const std::string& interpolation) {
  Filter filter = filter_named(interpolation);
  const int ch = image.channels;
  Coefficients horizontal = coefficients(image.width, width, filter);
  Coefficients vertical = coefficients(image.height, height, filter);
  bool need_horizontal = width != image.width, need_vertical = height != image.height;
  // the rows the vertical pass reads
  int first_row = vertical.first[0];
  int last_row = vertical.first[height - 1] + vertical.count[height - 1];
  Image current = image;
  if (need_horizontal) {
    int rows = need_vertical ? last_row - first_row : image.height;
    int offset = need_vertical ? first_row : 0;
    Image out{width, rows, ch, std::vector<uint8_t>(static_cast<std::size_t>(width) * rows * ch)};
    for (int y = 0; y < rows; ++y) {
      const uint8_t* in_row = image.pixels.data() + static_cast<std::size_t>(y + offset) * image.width * ch;
      uint8_t* out_row = out.pixels.data() + static_cast<std::size_t>(y) * width * ch;
      for (int xx = 0; xx < width; ++xx) {
        const int32_t* k = horizontal.weights.data() + static_cast<std::size_t>(xx) * horizontal.size;
        for (int c = 0; c < ch; ++c) {
          int32_t sum = 1 << (kPrecisionBits - 1);
          for (int x = 0; x < horizontal.count[xx]; ++x) sum += in_row[(x + horizontal.first[xx]) * ch + c] * k[x];
          out_row[xx * ch + c] = clip8(sum);
        }
      }
    }
    current = std::move(out);
    if (need_vertical) {
      for (int& first : vertical.first) first -= first_row;
    }
  }
  if (need_vertical) {
    const int w = current.width;
    Image out{w, height, ch, std::vector<uint8_t>(static_cast<std::size_t>(w) * height * ch)};
    for (int yy = 0; yy < height; ++yy) {
      const int32_t* k = vertical.weights.data() + static_cast<std::size_t>(yy) * vertical.size;
      uint8_t* out_row = out.pixels.data() + static_cast<std::size_t>(yy) * w * ch;
      for (int i = 0; i < w * ch; ++i) {
        int32_t sum = 1 << (kPrecisionBits - 1);
        for (int y = 0; y < vertical.count[yy]; ++y) {
          sum += current.pixels[static_cast<std::size_t>(y + vertical.first[yy]) * w * ch + i] * k[y];
        }
        out_row[i] = clip8(sum);
      }
    }
    current = std::move(out);
  }
  return current;
}

void preprocess_into(const Image& source, const PreprocessSpec& spec, float* out) {
  // resize (repmet/runtime/preprocess.py: _resize)
  int width = spec.resize_to, height = spec.resize_to;
  if (spec.resize == "shorter_side") {
    int shorter = std::min(source.width, source.height), longer = std::max(source.width, source.height);
    int new_longer = static_cast<int>(static_cast<double>(spec.resize_to) * longer / shorter);
    width = source.width <= source.height ? spec.resize_to : new_longer;
    height = source.width <= source.height ? new_longer : spec.resize_to;
  }
  const Image image = (width == source.width && height == source.height)
                          ? source
                          : resize_like_pillow(source, width, height, spec.interpolation);
  // centre crop, zero padding around an image smaller than the crop (torchvision's rule)
  const int crop = spec.crop, ch = image.channels;
  int padded_w = std::max(width, crop), padded_h = std::max(height, crop);
  int paste_x = (padded_w - width) / 2, paste_y = (padded_h - height) / 2;
  // Python's round() rounds halves to even, as nearbyint does
  int top = static_cast<int>(std::nearbyint((padded_h - crop) / 2.0));
  int left = static_cast<int>(std::nearbyint((padded_w - crop) / 2.0));
  const float scale = 255.0f;
  for (int c = 0; c < ch; ++c) {
    const float mean = spec.mean[c], std = spec.std[c];
    float* plane = out + static_cast<std::size_t>(c) * crop * crop;
    for (int y = 0; y < crop; ++y) {
      int sy = y + top - paste_y;
      for (int x = 0; x < crop; ++x) {
        int sx = x + left - paste_x;
        uint8_t raw = (sy >= 0 && sy < height && sx >= 0 && sx < width)
                          ? image.pixels[(static_cast<std::size_t>(sy) * width + sx) * ch + c]
                          : 0;
        if (spec.invert) raw = static_cast<uint8_t>(255 - raw);
        float pixel = static_cast<float>(raw) / scale;
        plane[y * crop + x] = (pixel - mean) / std;
      }
    }
  }
}

}  // namespace repmet

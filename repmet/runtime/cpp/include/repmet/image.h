// Images in: files (JPEG and PNG, decoded with libjpeg and libpng) or raw 8-bit buffers,
// converted to 8-bit grey or RGB exactly as the Python runtime converts them with Pillow:
// 16-bit scaled to 8 bits, transparency composited on black, RGB -> grey with ITU-R 601-2
// luma in Pillow's fixed-point arithmetic. An image is what a viewer shows: the EXIF
// Orientation of a JPEG (APP1) or of a PNG (an eXIf chunk before the image data) is applied,
// so boxes given for it and detections returned for it are in the viewer's pixels. A file
// cut short is refused (libjpeg's "premature end" warnings are errors here).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace repmet {

// Interleaved 8-bit pixels, rows packed: channels is 1 (grey) or 3 (RGB).
struct Image {
  int width = 0;
  int height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
};

// Pixels the caller owns: channels 1 (grey), 3 (RGB) or 4 (RGBA); stride in bytes (0: packed).
struct PixelBuffer {
  const uint8_t* data = nullptr;
  int width = 0;
  int height = 0;
  int channels = 0;
  std::size_t stride = 0;
};

// An image as a file path or as a buffer; ``name`` is what errors call it.
class ImageSource {
 public:
  ImageSource(std::string path);  // NOLINT: a path converts implicitly, as in Python
  ImageSource(const char* path);  // NOLINT
  ImageSource(const PixelBuffer& buffer, std::string name = "");  // NOLINT
  // The image as 8-bit grey (channels 1) or RGB (channels 3).
  Image load(int channels) const;
  const std::string& name() const { return name_; }

 private:
  std::string path_;
  PixelBuffer buffer_;
  bool is_path_ = true;
  std::string name_;
};

// Decoding alone (used by ImageSource): the file's pixels converted to ``channels``.
Image decode_image_file(const std::string& path, int channels);
Image convert_pixels(const PixelBuffer& buffer, int channels, const std::string& name);

}  // namespace repmet

// Decoding with libjpeg and libpng, then Pillow's conversions (repmet/imaging.py: convert).
// An image is what a viewer shows: a JPEG's (or PNG's) EXIF Orientation is applied, as
// repmet.imaging.upright does with Pillow's ImageOps.exif_transpose. A file cut short is
// refused, as Pillow refuses it ("image file is truncated").
#include "repmet/image.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "repmet/errors.h"
#include "repmet/limits.h"

namespace repmet {
namespace {

constexpr int64_t kMaxPixels = limits::kMaxPixels;  // Pillow's decompression-bomb limit, as in Python

std::string decode_error(const std::string& path, const std::string& why) {
  return "cannot decode image " + path + ": " + why + "; replace or remove the file";
}

void check_size(int64_t width, int64_t height, const std::string& name) {
  if (width <= 0 || height <= 0) {
    fail("image " + name + " is empty (" + std::to_string(width) + "x" + std::to_string(height) +
         " pixels); give an image with pixels");
  }
  if (width * height > kMaxPixels) {
    fail("image " + name + " is " + std::to_string(width) + "x" + std::to_string(height) + ", more than " +
         std::to_string(kMaxPixels) + " pixels; resize it before use");
  }
}

uint8_t luma(uint8_t r, uint8_t g, uint8_t b) {  // Pillow's L24: ITU-R 601-2 in 16-bit fixed point
  return static_cast<uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

uint8_t over_black(uint8_t value, uint8_t alpha) {  // Pillow's alpha_composite onto opaque black
  if (alpha == 0) return 0;
  uint32_t mixed = value * (alpha * 128u) + (0x80u << 7);
  return static_cast<uint8_t>((((mixed >> 8) + mixed) >> 8) >> 7);
}

// Interleaved grey, grey+alpha, RGB or RGBA rows -> ``channels`` (1 or 3).
Image from_interleaved(const uint8_t* data, int width, int height, int source_channels, std::size_t stride,
                       int channels) {
  Image image{width, height, channels, std::vector<uint8_t>(static_cast<std::size_t>(width) * height * channels)};
  uint8_t* out = image.pixels.data();
  for (int y = 0; y < height; ++y) {
    const uint8_t* row = data + y * stride;
    for (int x = 0; x < width; ++x, row += source_channels) {
      uint8_t r, g, b;
      if (source_channels <= 2) {
        r = g = b = source_channels == 2 ? over_black(row[0], row[1]) : row[0];
      } else if (source_channels == 4) {
        r = over_black(row[0], row[3]), g = over_black(row[1], row[3]), b = over_black(row[2], row[3]);
      } else {
        r = row[0], g = row[1], b = row[2];
      }
      if (channels == 1) {
        *out++ = source_channels <= 2 ? r : luma(r, g, b);
      } else {
        *out++ = r, *out++ = g, *out++ = b;
      }
    }
  }
  return image;
}

// ---------------------------------------------------------------- EXIF orientation
// The Orientation tag (0x0112) of IFD0 in a TIFF block (what follows "Exif\0\0" in a JPEG's
// APP1 segment, or a PNG's eXIf chunk): 1..8, or 1 when absent or malformed (as Pillow,
// which ignores EXIF it cannot read). Every offset is checked against ``size``.
int exif_orientation(const uint8_t* tiff, std::size_t size) {
  if (tiff == nullptr || size < 8) return 1;
  bool little = tiff[0] == 'I' && tiff[1] == 'I';
  if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
  auto get = [&](std::size_t at, int bytes) -> uint32_t {
    uint32_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint32_t>(tiff[at + i]) << (8 * (little ? i : bytes - 1 - i));
    return v;
  };
  if (get(2, 2) != 42) return 1;
  uint64_t ifd = get(4, 4);
  if (ifd + 2 > size) return 1;
  uint32_t entries = get(ifd, 2);
  for (uint32_t e = 0; e < entries; ++e) {
    uint64_t at = ifd + 2 + 12ull * e;
    if (at + 12 > size) return 1;
    if (get(at, 2) != 0x0112) continue;
    uint32_t type = get(at + 2, 2), count = get(at + 4, 4);
    if (count != 1 || (type != 3 && type != 4)) return 1;  // SHORT or LONG, one value, in the entry itself
    uint32_t value = type == 3 ? get(at + 8, 2) : get(at + 8, 4);
    return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
  }
  return 1;
}

// ``image`` turned as Pillow's exif_transpose turns it for ``orientation`` (2: mirror,
// 3: rotate 180, 4: flip, 5: transpose, 6: rotate 90 clockwise, 7: transverse, 8: rotate 90
// counter-clockwise): out(x, y) = in(source(x, y)).
Image oriented(Image image, int orientation) {
  if (orientation <= 1 || orientation > 8) return image;
  const int w = image.width, h = image.height, c = image.channels;
  const bool swaps = orientation >= 5;  // the transposing ones exchange width and height
  Image out{swaps ? h : w, swaps ? w : h, c, std::vector<uint8_t>(image.pixels.size())};
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      int sx = x, sy = y;
      switch (orientation) {
        case 2: sx = w - 1 - x; break;
        case 3: sx = w - 1 - x, sy = h - 1 - y; break;
        case 4: sy = h - 1 - y; break;
        case 5: sx = y, sy = x; break;
        case 6: sx = y, sy = h - 1 - x; break;
        case 7: sx = w - 1 - y, sy = h - 1 - x; break;
        case 8: sx = w - 1 - y, sy = x; break;
      }
      std::memcpy(&out.pixels[(static_cast<std::size_t>(y) * out.width + x) * c],
                  &image.pixels[(static_cast<std::size_t>(sy) * w + sx) * c], c);
    }
  }
  return out;
}

// ---------------------------------------------------------------- JPEG
struct JpegError {
  jpeg_error_mgr manager;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr info) {
  auto* error = reinterpret_cast<JpegError*>(info->err);
  (*info->err->format_message)(info, error->message);
  std::longjmp(error->jump, 1);
}

// libjpeg reports a file cut short (or entropy data cut short) as a warning and decodes on
// with grey; Pillow refuses a truncated file, so these warnings are errors here. Warnings that
// lose no pixels (extraneous bytes, unknown JFIF version, a bad ICC marker) Pillow ignores too.
void jpeg_emit_message(j_common_ptr info, int level) {
  if (level >= 0) return;  // trace messages
  switch (info->err->msg_code) {
    case JWRN_JPEG_EOF: case JWRN_HIT_MARKER: case JWRN_HUFF_BAD_CODE: case JWRN_ARITH_BAD_CODE:
    case JWRN_MUST_RESYNC: case JWRN_NOT_SEQUENTIAL: case JWRN_BOGUS_PROGRESSION: {
      auto* error = reinterpret_cast<JpegError*>(info->err);
      char text[JMSG_LENGTH_MAX];
      (*info->err->format_message)(info, text);
      std::snprintf(error->message, sizeof error->message, "%s (%s)",
                    info->err->msg_code == JWRN_JPEG_EOF ? "the file is truncated" : "its image data are corrupt", text);
      std::longjmp(error->jump, 1);
    }
    default:
      return;
  }
}

// The Orientation of the last APP1 "Exif" segment (Pillow keeps the last one), or 1.
int jpeg_orientation(const jpeg_decompress_struct& info) {
  int orientation = 1;
  for (jpeg_saved_marker_ptr m = info.marker_list; m != nullptr; m = m->next) {
    if (m->marker == JPEG_APP0 + 1 && m->data_length >= 6 && std::memcmp(m->data, "Exif\0\0", 6) == 0) {
      orientation = exif_orientation(m->data + 6, m->data_length - 6);
    }
  }
  return orientation;
}

Image decode_jpeg(std::FILE* file, const std::string& path, int channels) {
  jpeg_decompress_struct info;
  JpegError error;
  info.err = jpeg_std_error(&error.manager);
  error.manager.error_exit = jpeg_error_exit;
  error.manager.emit_message = jpeg_emit_message;
  error.manager.output_message = [](j_common_ptr) {};
  std::vector<uint8_t> pixels;
  int width = 0, height = 0, components = 0, orientation = 1;
  if (setjmp(error.jump)) {
    jpeg_destroy_decompress(&info);
    fail(decode_error(path, error.message));
  }
  jpeg_create_decompress(&info);
  jpeg_stdio_src(&info, file);
  jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);  // EXIF
  jpeg_read_header(&info, TRUE);
  orientation = jpeg_orientation(info);
  if (static_cast<int64_t>(info.image_width) * info.image_height > kMaxPixels) {
    const int64_t w = info.image_width, h = info.image_height;
    jpeg_destroy_decompress(&info);
    check_size(w, h, path);
  }
  if (info.jpeg_color_space == JCS_CMYK || info.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&info);
    fail(decode_error(path, "CMYK JPEGs are not read by the C++ runtime; save it as RGB"));
  }
  info.out_color_space = info.jpeg_color_space == JCS_GRAYSCALE ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&info);
  width = static_cast<int>(info.output_width), height = static_cast<int>(info.output_height);
  components = info.output_components;
  if (static_cast<int64_t>(width) * height > kMaxPixels) {
    jpeg_destroy_decompress(&info);
    check_size(width, height, path);
  }
  pixels.resize(static_cast<std::size_t>(width) * height * components);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = pixels.data() + static_cast<std::size_t>(info.output_scanline) * width * components;
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return oriented(from_interleaved(pixels.data(), width, height, components,
                                   static_cast<std::size_t>(width) * components, channels),
                  orientation);
}

// ---------------------------------------------------------------- PNG
void png_error_exit(png_structp png, png_const_charp message) {
  auto* text = static_cast<std::string*>(png_get_error_ptr(png));
  // libpng's reader says "Read Error" when the file ends before the image does
  *text = std::string(message) == "Read Error" ? "the file is truncated (libpng: Read Error)" : message;
  png_longjmp(png, 1);
}

Image decode_png(std::FILE* file, const std::string& path, int channels) {
  // C++ objects live in this frame only, declared before setjmp: libpng reports errors by longjmp
  std::string message;
  std::vector<uint8_t> raw;
  std::vector<png_bytep> rows;
  int orientation = 1;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &message, png_error_exit,
                                           [](png_structp, png_const_charp) {});
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    fail(decode_error(path, message));
  }
  png_init_io(png, file);
  png_set_user_limits(png, 1'000'000, 1'000'000);
  png_read_info(png, info);
#ifdef PNG_eXIf_SUPPORTED
  {  // an eXIf chunk before the image data (one after it is not read: see the note in image.h)
    png_uint_32 exif_size = 0;
    png_bytep exif = nullptr;
    if (png_get_eXIf_1(png, info, &exif_size, &exif) != 0) orientation = exif_orientation(exif, exif_size);
  }
#endif
  png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  if (static_cast<int64_t>(width) * height > kMaxPixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    check_size(width, height, path);
  }
  int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) {
    png_set_palette_to_rgb(png);
    // Pillow composites a palette image's transparency; a grey or RGB image's single
    // transparent colour it ignores
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  }
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (depth == 16) png_set_swap(png);  // host order (little-endian) for the 16-bit rule below
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  int source_channels = png_get_channels(png, info);
  bool sixteen = png_get_bit_depth(png, info) == 16;
  std::size_t stride = png_get_rowbytes(png, info);
  raw.resize(stride * height);
  rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) rows[y] = raw.data() + y * stride;
  png_read_image(png, rows.data());
  png_destroy_read_struct(&png, &info, nullptr);
  if (!sixteen) return oriented(from_interleaved(raw.data(), width, height, source_channels, stride, channels), orientation);
  // 16-bit grey: the full range scaled to 8 bits, rounded (repmet.imaging.sixteen_to_eight_bits;
  // v * 255 / 65535 is never a tie); 16-bit colour: Pillow keeps the high byte
  std::vector<uint8_t> eight(static_cast<std::size_t>(width) * height * source_channels);
  for (std::size_t i = 0; i < eight.size(); ++i) {
    uint16_t v;
    std::memcpy(&v, raw.data() + 2 * i, 2);
    eight[i] = source_channels == 1 ? static_cast<uint8_t>((2u * v * 255u + 65535u) / 131070u)
                                    : static_cast<uint8_t>(v >> 8);
  }
  return oriented(from_interleaved(eight.data(), width, height, source_channels,
                                   static_cast<std::size_t>(width) * source_channels, channels),
                  orientation);
}

}  // namespace

Image decode_image_file(const std::string& path, int channels) {
  // anything but an Error (std::filesystem, allocation) leaves as an Error: errors.h
  return translate_errors("cannot decode image " + path, "", [&]() -> Image {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!file) fail(decode_error(path, "the file cannot be opened (" + std::string(std::strerror(errno)) + ")"));
    unsigned char magic[8] = {0};
    std::size_t got = std::fread(magic, 1, sizeof magic, file.get());
    std::rewind(file.get());
    if (got >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) return decode_jpeg(file.get(), path, channels);
    if (got == 8 && png_sig_cmp(magic, 0, 8) == 0) return decode_png(file.get(), path, channels);
    fail(decode_error(path, "not a JPEG or PNG file (the C++ runtime reads those two)"));
});
}

Image convert_pixels(const PixelBuffer& buffer, int channels, const std::string& name) {
  if (buffer.data == nullptr) fail("image " + name + ": the pixel buffer is null");
  if (buffer.channels != 1 && buffer.channels != 3 && buffer.channels != 4) {
    fail("image " + name + ": a pixel buffer has 1 (grey), 3 (RGB) or 4 (RGBA) channels, got " +
         std::to_string(buffer.channels));
  }
  check_size(buffer.width, buffer.height, name);
  std::size_t packed = static_cast<std::size_t>(buffer.width) * buffer.channels;
  std::size_t stride = buffer.stride ? buffer.stride : packed;
  if (stride < packed) {
    fail("image " + name + ": stride " + std::to_string(stride) + " is shorter than a row (" +
         std::to_string(packed) + " bytes)");
  }
  return from_interleaved(buffer.data, buffer.width, buffer.height, buffer.channels, stride, channels);
}

ImageSource::ImageSource(std::string path) : path_(std::move(path)), name_(path_) {}
ImageSource::ImageSource(const char* path) : ImageSource(std::string(path)) {}
ImageSource::ImageSource(const PixelBuffer& buffer, std::string name)
    : buffer_(buffer), is_path_(false), name_(name.empty() ? "<pixel buffer>" : std::move(name)) {}

Image ImageSource::load(int channels) const {
  return is_path_ ? decode_image_file(path_, channels) : convert_pixels(buffer_, channels, name_);
}

}  // namespace repmet

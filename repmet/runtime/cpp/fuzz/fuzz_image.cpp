// Image decoding (src/image.cpp: JPEG and PNG with libjpeg/libpng, EXIF orientation) on
// arbitrary bytes, to grey and to RGB: it returns or throws repmet::Error; anything else is a finding.
#include "fuzz_common.h"
#include "repmet/errors.h"
#include "repmet/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string path = repmet_fuzz::write_input("image", data, size);
  for (int channels : {1, 3}) {
    try {
      repmet::Image image = repmet::decode_image_file(path, channels);
      if (image.pixels.size() != static_cast<std::size_t>(image.width) * image.height * image.channels) __builtin_trap();
    } catch (const repmet::Error&) {
    }
  }
  return 0;
}

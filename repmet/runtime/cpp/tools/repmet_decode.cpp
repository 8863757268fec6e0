// repmet-decode IMAGE L|RGB OUT.pnm
//
// The pixels the runtime decodes from IMAGE (EXIF orientation applied, converted to grey or
// RGB as the Python runtime converts them), written as a binary PGM (L) or PPM (RGB), for the
// tests; a file the runtime refuses prints its sentence and exits 2. Needs no torch.
#include <fstream>
#include <iostream>
#include <string>

#include "repmet/errors.h"
#include "repmet/image.h"

int main(int argc, char** argv) {
  if (argc != 4 || (std::string(argv[2]) != "L" && std::string(argv[2]) != "RGB")) {
    std::cerr << "usage: repmet-decode IMAGE L|RGB OUT.pnm\n";
    return 2;
  }
  try {
    const int channels = std::string(argv[2]) == "L" ? 1 : 3;
    repmet::Image image = repmet::decode_image_file(argv[1], channels);
    std::ofstream out(argv[3], std::ios::binary);
    out << (channels == 1 ? "P5" : "P6") << "\n" << image.width << " " << image.height << "\n255\n";
    out.write(reinterpret_cast<const char*>(image.pixels.data()), static_cast<std::streamsize>(image.pixels.size()));
    if (!out) repmet::fail(std::string("cannot write ") + argv[3]);
  } catch (const repmet::Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  } catch (const std::exception& error) {  // a safety net: the library throws only repmet::Error
    std::cerr << "error: " << error.what() << "\n";
    return 1;
  }
  return 0;
}

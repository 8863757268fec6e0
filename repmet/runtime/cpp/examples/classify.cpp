// The README's example: load an artifact, enroll classes, classify a camera-like frame.
//   repmet-example ARTIFACT CLASS_A_IMAGE CLASS_B_IMAGE QUERY_IMAGE
#include <cstring>
#include <iostream>

#include "repmet/classifier.h"

int main(int argc, char** argv) {
  if (argc != 5) return std::cerr << "usage: repmet-example ARTIFACT A.png B.png QUERY.png\n", 2;
  try {
    auto classifier = repmet::FewShotClassifier::load(argv[1], "cpu");
    classifier.enroll("a", {argv[2]});  // file paths...
    classifier.enroll("b", {argv[3]});
    // ...or pixels you already hold, e.g. a camera frame: 8-bit grey / RGB / RGBA rows with a stride
    repmet::Image decoded = repmet::decode_image_file(argv[4], 3);
    const std::size_t stride = decoded.width * 3 + 64;  // padded rows, as many cameras deliver them
    std::vector<uint8_t> frame(stride * decoded.height);
    for (int y = 0; y < decoded.height; ++y) {
      std::memcpy(&frame[y * stride], &decoded.pixels[y * decoded.width * 3], decoded.width * 3);
    }
    repmet::PixelBuffer pixels{frame.data(), decoded.width, decoded.height, 3, stride};
    for (const auto& p : classifier.classify({repmet::ImageSource(pixels, "frame")}, 2)) {
      std::cout << p.labels[0] << " " << p.posteriors[0] << "\n";
    }
  } catch (const repmet::Error& error) {  // the only exception the library throws: a sentence
    return std::cerr << "error: " << error.what() << "\n", 2;
  } catch (const std::exception& error) {  // a safety net all the same
    return std::cerr << "error: " << error.what() << "\n", 1;
  }
}

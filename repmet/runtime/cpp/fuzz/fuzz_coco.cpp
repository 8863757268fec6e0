// The COCO support JSON reader of repmet-predict --detect (tools/repmet_predict.cpp:
// support_boxes) on arbitrary bytes, in a folder whose images/ holds the corpus's image names
// (coco_image_names.inc, written by make_corpus.py; empty files: support_boxes only checks that they exist). It returns or
// throws repmet::Error; anything else is a finding. The tool is compiled in with its main renamed
// and made static, so nothing that needs libtorch (the detector it would load) is linked.
#include <sys/stat.h>

#include "fuzz_common.h"

#define main static repmet_predict_main
#include "../tools/repmet_predict.cpp"
#undef main

namespace {
const char* const kImageNames[] = {
#include "coco_image_names.inc"
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const bool ready = [] {
    const std::string images = repmet_fuzz::scratch_folder() + "/images";
    mkdir(images.c_str(), 0700);
    for (const char* name : kImageNames) repmet_fuzz::write_input(std::string("images/") + name, nullptr, 0);
    return true;
  }();
  (void)ready;
  const std::string path = repmet_fuzz::write_input("support.json", data, size);
  try {
    auto classes = support_boxes(path);
    (void)classes.size();
  } catch (const repmet::Error&) {
  }
  return 0;
}

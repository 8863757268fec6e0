// An artifact's metadata.json (src/artifact.cpp) on arbitrary bytes: Artifact::open on a folder
// holding only that file (its checks run before any listed file is looked for), then the JSON
// checks that the fingerprint runs (fingerprint_text) on the document itself, as if every
// listed file were present. Each returns or throws repmet::Error; anything else is a finding.
#include <map>

#include "fuzz_common.h"
#include "repmet/artifact.h"
#include "repmet/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static const std::string folder = [] {
    std::string path = repmet_fuzz::scratch_folder() + "/artifact";
    mkdir(path.c_str(), 0700);
    return path;
  }();
  const std::string meta = repmet_fuzz::write_input("artifact/metadata.json", data, size);
  try {
    repmet::Artifact artifact = repmet::Artifact::open(folder);
    (void)artifact.fingerprint();
  } catch (const repmet::Error&) {
  }
  try {
    const nlohmann::json metadata = repmet::read_json_file(meta, "fix the file");
    std::map<std::string, std::string> sha256s;
    if (metadata.is_object() && metadata.contains("files") && metadata["files"].is_object()) {
      for (const auto& [name, entry] : metadata["files"].items()) sha256s[name] = std::string(64, '0');
    }
    (void)repmet::fingerprint_text(metadata, sha256s, meta);
  } catch (const repmet::Error&) {
  }
  return 0;
}

// Shared by the fuzz targets: the parsers read files, so each input is written to a file in a
// private temporary folder (under /dev/shm when it exists: no disk writes per execution),
// removed when the process exits.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

namespace repmet_fuzz {

inline const std::string& scratch_folder() {
  static const std::string folder = [] {
    std::string base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    std::string pattern = base + "/repmet-fuzz-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();
    static char at_exit[4096];  // not the string: it is destroyed before the handler runs
    std::snprintf(at_exit, sizeof at_exit, "%s", pattern.c_str());
    std::atexit([] {  // a crash leaves it, with the input
      std::error_code ignored;
      std::filesystem::remove_all(at_exit, ignored);
    });
    return pattern;
  }();
  return folder;
}

// ``data`` written to scratch_folder()/name; its path.
inline std::string write_input(const std::string& name, const uint8_t* data, std::size_t size) {
  std::string path = scratch_folder() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) std::abort();
  return path;
}

}  // namespace repmet_fuzz

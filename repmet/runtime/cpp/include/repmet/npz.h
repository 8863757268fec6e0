// numpy's .npz (a zip of .npy files) without Python: what np.savez writes (stored entries,
// zip64 headers) and deflated entries (np.savez_compressed) are read; galleries are written
// stored, as np.savez writes them. Only plain dtypes: no object arrays, so no pickle.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace repmet {

struct NpyArray {
  std::string descr;  // numpy's dtype string, e.g. "<f4", "<i8", "<U12"
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // C order
  int64_t size() const;
  std::vector<std::string> strings() const;  // a unicode ("<U") array's items, as UTF-8
  static NpyArray from_strings(const std::vector<std::string>& items, std::vector<int64_t> shape);
};

// Raises Error (naming ``path``) when the file is not an .npz this reader understands.
std::map<std::string, NpyArray> read_npz(const std::string& path);
// Written to a temporary file beside ``path``, then renamed over it: a failed save leaves the old file.
void write_npz_atomically(const std::string& path, const std::map<std::string, NpyArray>& arrays);

}  // namespace repmet

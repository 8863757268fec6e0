// numpy's .npz (a zip of .npy files) without Python: what np.savez writes (stored entries,
// zip64 headers) and deflated entries (np.savez_compressed) are read; galleries are written
// stored, as np.savez writes them. Only plain dtypes: no object arrays, so no pickle.
//
// Hostile files: every offset is checked against the file, every member's declared size and
// .npy header (dtype, shape) are read and checked against each other and against the limits
// (repmet/limits.json) before anything is inflated, and inflating never writes past the
// declared size, so a 2 MB file declaring gigabytes is refused in milliseconds.
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

// An .npz file's members as their .npy headers declare them; a member's bytes are inflated
// only when read. Raises Error (naming ``path``) when the file is not an .npz this reader
// understands or declares more than the limits.
class NpzFile {
 public:
  struct Member {
    std::string descr;
    std::vector<int64_t> shape;
    uint64_t bytes = 0;  // of the whole .npy file, header included, as the zip declares it
    // where it lies in the zip
    int method = 0;
    uint32_t crc = 0;
    uint64_t data = 0, packed = 0;
    std::size_t header_bytes = 0;
  };
  explicit NpzFile(const std::string& path);
  const std::string& path() const { return path_; }
  const std::map<std::string, Member>& members() const { return members_; }  // by name, without ".npy"
  NpyArray read(const std::string& name) const;

 private:
  std::string path_;
  std::vector<uint8_t> zip_;
  std::map<std::string, Member> members_;
};

// Every member of the .npz file at ``path``, read.
std::map<std::string, NpyArray> read_npz(const std::string& path);
// Written to a temporary file beside ``path``, then renamed over it: a failed save leaves the old file.
void write_npz_atomically(const std::string& path, const std::map<std::string, NpyArray>& arrays);

}  // namespace repmet

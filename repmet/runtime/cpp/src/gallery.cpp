#include "repmet/gallery.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>
#include <set>

#include "repmet/errors.h"
#include "repmet/limits.h"
#include "repmet/npz.h"

namespace repmet {
namespace {

const std::string kFormat = "repmet-gallery-2";

// The next code point of UTF-8 ``text`` at ``i`` (advanced past it), or -1 if the bytes there are
// not UTF-8 (overlong forms and surrogates included).
int32_t next_code_point(const std::string& text, size_t& i) {
  const auto byte = [&](size_t j) { return static_cast<uint8_t>(text[j]); };
  const uint8_t lead = byte(i);
  int length = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 0;
  if (length == 0 || i + length > text.size()) return -1;
  int32_t code = length == 1 ? lead : lead & (0x7F >> length);
  for (int j = 1; j < length; ++j) {
    if ((byte(i + j) & 0xC0) != 0x80) return -1;
    code = (code << 6) | (byte(i + j) & 0x3F);
  }
  static const int32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
  if (code < kSmallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return -1;
  i += length;
  return code;
}

bool is_space_separator(int32_t c) {  // Unicode category Zs
  return c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}
const std::string kRemedy = "enroll the classes again and save a new gallery";

constexpr int64_t kMaxScalarChars = 256;  // the format name and the fingerprint

// ``path`` itself, if it names a gallery file: it ends in .npz and is not a folder (a gallery is
// never written or read anywhere but where it was asked), as repmet.artifact.gallery_file.gallery_file.
std::string gallery_file(const std::string& path) {
  namespace fs = std::filesystem;
  const fs::path file(path);
  std::error_code ignored;
  if (fs::is_directory(file, ignored)) {
    fail(path + " is a folder; give the gallery's file name, such as " + (file / "gallery.npz").string());
  }
  if (file.extension() != ".npz") {
    const std::string name = file.filename().string();
    fail("a gallery is a .npz file: " + path + " does not end in .npz; give a name such as " +
         (name.empty() ? std::string("gallery.npz") : name + ".npz"));
  }
  return path;
}

// A member's dtype and shape as its .npy header declares them, against the limits table, before
// it is inflated (repmet/artifact/npz_headers.py checks the same).
void check_declared(const std::string& path, const std::string& name, const NpzFile::Member& m) {
  auto refuse = [&](const std::string& what) { fail("gallery " + path + ": " + name + " " + what + "; " + kRemedy); };
  const auto& dims = m.shape;
  auto shape_text = [&] {
    std::string text = "(";
    for (std::size_t i = 0; i < dims.size(); ++i) text += (i ? ", " : "") + std::to_string(dims[i]);
    return text + (dims.size() == 1 ? ",)" : ")");
  };
  const bool unicode = m.descr.size() > 2 && m.descr[1] == 'U';
  int64_t chars = 0;  // of a unicode item; its digits were checked when the header was read (npz.cpp)
  if (unicode) std::from_chars(m.descr.data() + 2, m.descr.data() + m.descr.size(), chars);
  if (name == "format" || name == "fingerprint") {
    if (!dims.empty() || !unicode || chars > kMaxScalarChars) refuse("must be one short string, got " + m.descr + " " + shape_text());
  } else if (name == "labels" || name == "counts") {
    if (dims.size() != 1 || dims[0] > limits::kMaxClasses) {
      refuse("must list at most " + std::to_string(limits::kMaxClasses) + " classes, got shape " + shape_text());
    }
    if (name == "labels" && chars > limits::kMaxLabelChars) {
      refuse("holds labels of up to " + std::to_string(chars) + " characters; the limit is " +
             std::to_string(limits::kMaxLabelChars));
    }
  } else if (name == "representatives") {
    if (dims.size() != 3) refuse("must be [classes, K, dim], got shape " + shape_text());
    if (dims[0] > limits::kMaxClasses || dims[1] > limits::kMaxRepsPerClass || dims[2] > limits::kMaxEmbeddingDim) {
      refuse("declares " + shape_text() + "; the limits are " + std::to_string(limits::kMaxClasses) + " classes, " +
             std::to_string(limits::kMaxRepsPerClass) + " representatives per class and " +
             std::to_string(limits::kMaxEmbeddingDim) + " dimensions");
    }
    if (m.bytes - m.header_bytes > static_cast<uint64_t>(limits::kMaxGalleryBytes)) {
      refuse("declares " + std::to_string(m.bytes - m.header_bytes) + " bytes, more than the limit of " +
             std::to_string(limits::kMaxGalleryBytes));
    }
  } else {
    refuse("is not one of a gallery's arrays (format, fingerprint, labels, representatives, counts)");
  }
}

std::string scalar_string(const NpyArray& array) {
  auto items = array.strings();
  return array.shape.empty() && items.size() == 1 ? items[0] : std::string("\x01");  // \x01: not a string
}

}  // namespace

// repmet.artifact.labels.label_problem: 1 to kMaxLabelChars code points, no control characters
// or line/paragraph separators (they forge lines in printed tables), not only spaces.
std::string label_problem(const std::string& label) {
  if (label.empty()) return "a label must be a non-empty string, got ''";
  const std::string shown = "'" + label.substr(0, 60) + (label.size() > 60 ? "...'" : "'");
  int64_t chars = 0;
  bool visible = false;
  for (size_t i = 0; i < label.size();) {
    const int32_t c = next_code_point(label, i);
    if (c < 0) return "a label must be UTF-8 text; this one is not";
    if (++chars > limits::kMaxLabelChars) {
      for (size_t rest = i; rest < label.size() && next_code_point(label, rest) >= 0;) ++chars;
      return "a label may have at most " + std::to_string(limits::kMaxLabelChars) + " characters, got " +
             std::to_string(chars) + " (" + shown + ")";
    }
    if (c < 0x20 || (c >= 0x7F && c <= 0x9F) || c == 0x2028 || c == 0x2029) {
      char code[8];
      std::snprintf(code, sizeof code, "%04X", static_cast<unsigned>(c));
      return "label " + shown + " holds the control character U+" + code + "; labels are one line of visible text";
    }
    visible = visible || !is_space_separator(c);
  }
  if (!visible) return "a label must hold a visible character, got " + shown;
  return "";
}

Gallery::Gallery(int reps_per_class, int dim, std::string fingerprint)
    : fingerprint_(std::move(fingerprint)), k_(reps_per_class), dim_(dim) {}

Gallery Gallery::load(const std::string& requested, const std::function<void(const Gallery&)>& check_first) {
  // anything but an Error (std::filesystem, allocation) leaves as an Error: errors.h
  return translate_errors("cannot read gallery " + requested, "", [&]() -> Gallery {
    const std::string path = gallery_file(requested);
    NpzFile file(path);  // reads only the headers
    const auto& members = file.members();
    for (const char* key : {"format", "fingerprint", "labels", "representatives", "counts"}) {
      if (!members.count(key)) {
        if (!members.count("format") && members.count("representatives") && members.count("counts")) {
          fail(path + " was saved by an older repmet (a .npz with a .json beside it), which this version no longer reads; " + kRemedy);
        }
        fail(path + " is not a repmet gallery (it lacks " + key + "); " + kRemedy);
      }
    }
    for (const auto& [name, member] : members) check_declared(path, name, member);
    std::map<std::string, NpyArray> arrays;
    for (const char* key : {"format", "fingerprint"}) arrays[key] = file.read(key);
    std::string format = scalar_string(arrays["format"]);
    if (format != kFormat) {
      fail(path + " is not a repmet gallery of this version (format '" + format + "', expected '" + kFormat + "'); " + kRemedy);
    }
    Gallery gallery;
    gallery.fingerprint_ = scalar_string(arrays["fingerprint"]);
    if (gallery.fingerprint_ == "\x01") fail("gallery " + path + ": its fingerprint is not a string; " + kRemedy);
    if (check_first) {  // e.g. the model's fingerprint and (K, dim), before the representatives are inflated
      const auto& declared = members.at("representatives").shape;
      Gallery header(static_cast<int>(declared[1]), static_cast<int>(declared[2]), gallery.fingerprint_);
      check_first(header);
    }
    for (const char* key : {"labels", "representatives", "counts"}) arrays[key] = file.read(key);
    const NpyArray& labels = arrays["labels"];
    const NpyArray& reps = arrays["representatives"];
    const NpyArray& counts = arrays["counts"];
    auto problem = [&](const std::string& what) { fail("gallery " + path + ": " + what + "; " + kRemedy); };
    if (labels.shape.size() != 1 || labels.descr.size() < 3 || labels.descr[1] != 'U') {
      problem("labels must be a 1-D array of strings, got " + labels.descr);
    }
    if (reps.descr != "<f4" || reps.shape.size() != 3) {
      problem("representatives must be a float32 array [classes, K, dim], got " + reps.descr);
    }
    if ((counts.descr != "<i8" && counts.descr != "<i4") || counts.shape.size() != 1) {
      problem("counts must be integers [classes], got " + counts.descr);
    }
    gallery.labels_ = labels.strings();
    int c = static_cast<int>(reps.shape[0]);
    gallery.k_ = static_cast<int>(reps.shape[1]), gallery.dim_ = static_cast<int>(reps.shape[2]);
    if (gallery.k_ < 1 || gallery.dim_ < 1) problem("representatives need at least one representative of at least one dimension");
    if (static_cast<int>(gallery.labels_.size()) != c || counts.shape[0] != c) {
      problem(std::to_string(gallery.labels_.size()) + " labels, " + std::to_string(c) + " classes of representatives and " +
              std::to_string(counts.shape[0]) + " counts do not agree");
    }
    gallery.representatives_.resize(reps.size());
    std::memcpy(gallery.representatives_.data(), reps.data.data(), reps.data.size());
    for (float v : gallery.representatives_) {
      if (!std::isfinite(v)) problem("representatives hold NaN or infinite values");
    }
    for (int64_t i = 0; i < counts.size(); ++i) {
      int64_t v = 0;
      if (counts.descr == "<i8") std::memcpy(&v, &counts.data[i * 8], 8);
      else { int32_t w; std::memcpy(&w, &counts.data[i * 4], 4); v = w; }
      if (v < 1 || v > gallery.k_) problem("counts must be between 1 and K = " + std::to_string(gallery.k_));
      gallery.counts_.push_back(v);
    }
    std::set<std::string> seen;
    for (const auto& label : gallery.labels_) {
      if (const std::string why = label_problem(label); !why.empty()) problem(why);
      if (!seen.insert(label).second) problem("label '" + label + "' appears twice");
    }
    if (!std::regex_match(gallery.fingerprint_, std::regex("^[0-9a-f]{64}$"))) {
      problem("its fingerprint must be 64 lowercase hexadecimal digits");
    }
    return gallery;
});
}

void Gallery::save(const std::string& path) const {
  // anything but an Error (std::filesystem, allocation) leaves as an Error: errors.h
  return translate_errors("cannot save the gallery to " + path, "", [&]() {
    std::map<std::string, NpyArray> arrays;
    arrays["format"] = NpyArray::from_strings({kFormat}, {});
    arrays["fingerprint"] = NpyArray::from_strings({fingerprint_}, {});
    arrays["labels"] = NpyArray::from_strings(labels_, {static_cast<int64_t>(labels_.size())});
    NpyArray reps{"<f4", {size(), k_, dim_}, std::vector<uint8_t>(representatives_.size() * 4)};
    std::memcpy(reps.data.data(), representatives_.data(), reps.data.size());
    arrays["representatives"] = std::move(reps);
    NpyArray counts{"<i8", {size()}, std::vector<uint8_t>(counts_.size() * 8)};
    std::memcpy(counts.data.data(), counts_.data(), counts.data.size());
    arrays["counts"] = std::move(counts);
    write_npz_atomically(gallery_file(path), arrays);
});
}

Gallery Gallery::with_class(const std::string& label, const std::vector<float>& embeddings, int n, int seed) const {
  if (const std::string why = label_problem(label); !why.empty()) fail("cannot enroll: " + why);
  if (n < 1 || static_cast<int>(embeddings.size()) != n * dim_) {
    fail("cannot enroll '" + label + "': expected " + std::to_string(dim_) + "-d embeddings");
  }
  for (float v : embeddings) {
    if (!std::isfinite(v)) fail("cannot enroll '" + label + "': its embeddings hold NaN or infinite values");
  }
  int k = std::min(k_, n);
  std::vector<float> centers = kmeans(embeddings, n, dim_, k, seed);
  Gallery out(k_, dim_, fingerprint_);
  for (int c = 0; c < size(); ++c) {
    if (labels_[c] == label) continue;
    out.labels_.push_back(labels_[c]);
    out.counts_.push_back(counts_[c]);
    auto first = representatives_.begin() + static_cast<std::ptrdiff_t>(c) * k_ * dim_;
    out.representatives_.insert(out.representatives_.end(), first, first + static_cast<std::ptrdiff_t>(k_) * dim_);
  }
  out.labels_.push_back(label);
  out.counts_.push_back(k);
  out.representatives_.insert(out.representatives_.end(), centers.begin(), centers.end());
  for (int pad = k; pad < k_; ++pad) {  // fewer than K: the last one repeats (the head takes the minimum)
    out.representatives_.insert(out.representatives_.end(), centers.end() - dim_, centers.end());
  }
  return out;
}

Gallery Gallery::without_class(const std::string& label) const {
  Gallery out(k_, dim_, fingerprint_);
  bool found = false;
  for (int c = 0; c < size(); ++c) {
    if (labels_[c] == label) { found = true; continue; }
    out.labels_.push_back(labels_[c]);
    out.counts_.push_back(counts_[c]);
    auto first = representatives_.begin() + static_cast<std::ptrdiff_t>(c) * k_ * dim_;
    out.representatives_.insert(out.representatives_.end(), first, first + static_cast<std::ptrdiff_t>(k_) * dim_);
  }
  if (!found) {
    std::string enrolled;
    for (int c = 0; c < std::min(size(), 10); ++c) enrolled += (c ? ", " : "") + std::string("'") + labels_[c] + "'";
    fail("label '" + label + "' is not enrolled (enrolled: " + (enrolled.empty() ? "none" : enrolled) + ")");
  }
  return out;
}

}  // namespace repmet

// metadata.json checked as repmet/artifact/reader.py checks it, for the keys the C++ runtime
// reads (the full JSON Schema is Python's; a metadata.json it accepts passes here too), with
// the same sentences: the key path, its value, why, and "export the artifact again".
#include "repmet/artifact.h"

#include <filesystem>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <regex>
#include <set>

#include <openssl/evp.h>

#include "repmet/errors.h"
#include "repmet/limits.h"

namespace repmet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kRemedy = "export the artifact again with metric-export";
constexpr int kSchemaVersion = 1;
constexpr int kMaxSide = static_cast<int>(limits::kMaxSide);

std::string shown(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);  // never throws on bad UTF-8
  return text.size() <= 80 ? text : text.substr(0, 77) + "...";
}

class Checker {
 public:
  Checker(const json& root, std::string meta_path) : root_(root), meta_path_(std::move(meta_path)) {}

  const json& at(const std::string& dotted) const {
    const json* node = &root_;
    std::string walked;
    std::size_t start = 0;
    while (start <= dotted.size()) {
      std::size_t dot = dotted.find('.', start);
      std::string key = dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!node->is_object()) invalid(walked, *node, "it must be an object");
      if (!node->contains(key)) fail(meta_path_ + ": " + (walked.empty() ? key : walked + "." + key) + " is missing; " + kRemedy);
      node = &(*node)[key];
      walked = walked.empty() ? key : walked + "." + key;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    return *node;
  }

  std::string string(const std::string& key) const {
    const json& v = at(key);
    if (!v.is_string()) invalid(key, v, "it must be a string");
    return v.get<std::string>();
  }

  std::string one_of(const std::string& key, const std::vector<std::string>& choices) const {
    std::string v = string(key);
    for (const auto& c : choices) {
      if (v == c) return v;
    }
    std::string list;
    for (const auto& c : choices) list += (list.empty() ? "" : ", ") + c;
    invalid(key, at(key), "it must be one of " + list);
  }

  int integer(const std::string& key, int low, int high) const {
    const json& v = at(key);
    if (!v.is_number_integer() || v.get<int64_t>() < low || v.get<int64_t>() > high) {
      invalid(key, v, "it must be an integer from " + std::to_string(low) + " to " + std::to_string(high));
    }
    return v.get<int>();
  }

  std::vector<float> numbers(const std::string& key, int count, bool positive) const {
    const json& v = at(key);
    if (!v.is_array() || static_cast<int>(v.size()) != count) {
      invalid(key, v, "it needs one value per input channel (" + std::to_string(count) + ")");
    }
    std::vector<float> out;
    for (const auto& item : v) {
      if (!item.is_number() || (positive && item.get<double>() <= 0)) {
        invalid(key, v, positive ? "its values must be numbers above 0" : "its values must be numbers");
      }
      out.push_back(static_cast<float>(item.get<double>()));
    }
    return out;
  }

  std::string file_name(const std::string& key) const {
    std::string name = string(key);
    static const std::regex plain(R"(^[^./\\\x00-\x1f][^/\\\x00-\x1f]{0,254}$)");
    if (!std::regex_match(name, plain)) {
      invalid(key, at(key), "it must be a plain file name inside the artifact folder: no '/' or '\\', not starting with '.'");
    }
    return name;
  }

  [[noreturn]] void invalid(const std::string& key, const json& value, const std::string& why) const {
    fail(meta_path_ + ": " + (key.empty() ? "the top level" : key) + " = " + shown(value) + " is invalid (" + why +
         "); " + kRemedy);
  }

 private:
  const json& root_;
  std::string meta_path_;
};

std::string sha256_of_text(const std::string& text) {
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (!context || EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(context.get(), text.data(), text.size()) != 1 ||
      EVP_DigestFinal_ex(context.get(), digest, &length) != 1) {
    fail("cannot compute a sha256 (OpenSSL failed)");
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) out += hex[digest[i] >> 4], out += hex[digest[i] & 15];
  return out;
}

bool has_control(const std::string& text) {
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

// PATH=VALUE lines of ``value``, as repmet/artifact/fingerprint.py writes them: object keys sorted
// (nlohmann::json keeps them in a std::map: byte order, which is code point order in UTF-8),
// list items with their index, integers as integers, other numbers "%.17g", true/false, null.
void flatten(const Checker& check, const std::string& path, const json& value, std::string& out) {
  switch (value.type()) {
    case json::value_t::object:
      for (const auto& [key, item] : value.items()) {
        if (has_control(key) || key.find('.') != std::string::npos || key.find('=') != std::string::npos) {
          check.invalid(path + "." + key, item, "its keys must not hold control characters, '.' or '='");
        }
        flatten(check, path + "." + key, item, out);
      }
      return;
    case json::value_t::array:
      for (std::size_t i = 0; i < value.size(); ++i) flatten(check, path + "." + std::to_string(i), value[i], out);
      return;
    case json::value_t::null:
      out += path + "=null\n";
      return;
    case json::value_t::boolean:
      out += path + (value.get<bool>() ? "=true\n" : "=false\n");
      return;
    case json::value_t::number_integer:
      out += path + "=" + std::to_string(value.get<int64_t>()) + "\n";
      return;
    case json::value_t::number_unsigned:
      if (value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        check.invalid(path, value, "integers must fit in 64 bits");
      }
      out += path + "=" + std::to_string(value.get<uint64_t>()) + "\n";
      return;
    case json::value_t::number_float: {
      double number = value.get<double>();
      if (!std::isfinite(number)) check.invalid(path, value, "it must be a finite number");
      char text[64];
      std::snprintf(text, sizeof text, "%.17g", number);
      out += path + "=" + text + "\n";
      return;
    }
    case json::value_t::string:
      if (has_control(value.get<std::string>())) check.invalid(path, value, "it must not hold control characters");
      out += path + "=" + value.get<std::string>() + "\n";
      return;
    default:
      check.invalid(path, value, "it is not a JSON value");
  }
}

}  // namespace

std::string fingerprint_text(const json& metadata, const std::map<std::string, std::string>& sha256s,
                             const std::string& meta_path) {
  Checker check(metadata, meta_path);
  std::string text = "repmet-fingerprint-2\n";
  const json& gallery = check.at("gallery");
  for (const auto& [name, sha256] : sha256s) {  // sorted by name
    if (gallery.is_string() && gallery.get<std::string>() == name) continue;  // it carries the fingerprint
    text += "file " + name + " " + sha256 + "\n";
  }
  for (const char* path : {"embedding.dim", "embedding.normalized", "head.distance", "input", "preprocess"}) {
    flatten(check, path, check.at(path), text);
  }
  return text;
}

json read_json_file(const std::string& path, const std::string& remedy) {
  std::error_code error;
  const auto size = fs::file_size(path, error);
  if (error) fail("cannot read " + path + " (" + error.message() + ")");
  if (size > static_cast<uint64_t>(limits::kMaxJsonBytes)) {
    fail(path + " is " + std::to_string(size) + " bytes, more than the limit of " + std::to_string(limits::kMaxJsonBytes) +
         " for a JSON file; " + remedy);
  }
  // nesting is bounded while parsing: a deep document would exhaust the stack when printed or freed
  auto bounded = [&](int depth, json::parse_event_t, json&) {
    if (depth > limits::kMaxJsonDepth) {
      fail(path + " is nested more than " + std::to_string(limits::kMaxJsonDepth) + " levels deep; " + remedy);
    }
    return true;
  };
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read " + path + " (" + std::strerror(errno) + ")");
  try {
    return json::parse(in, bounded);
  } catch (const json::exception& e) {
    fail(path + " is not valid JSON (" + e.what() + "); " + remedy);
  }
}

Artifact Artifact::open(const std::string& folder) {
  // anything but an Error (std::filesystem, allocation) leaves as an Error: errors.h
  return translate_errors("cannot open the artifact " + folder, "", [&]() -> Artifact {
    fs::path meta_path = fs::path(folder) / "metadata.json";
    std::error_code no_throw;  // a path that cannot be looked at (too long, no permission) is one that is missing
    if (!fs::is_regular_file(meta_path, no_throw)) {
      fail(folder + " is not an artifact: metadata.json is missing; export one with metric-export CHECKPOINT --out " + folder);
    }
    json metadata = read_json_file(meta_path.string(), kRemedy);
    if (!metadata.is_object()) fail(meta_path.string() + " does not hold a JSON object; " + kRemedy);
    if (!metadata.contains("schema_version") || metadata["schema_version"] != kSchemaVersion) {
      fail(meta_path.string() + " has schema version " +
           (metadata.contains("schema_version") ? metadata["schema_version"].dump() : "None") +
           ", this repmet reads version 1; export the checkpoint again with this version of metric-export");
    }
    Checker check(metadata, meta_path.string());
    Artifact artifact;
    artifact.folder_ = folder;
    artifact.task_ = check.one_of("task", {"classification", "detection"});
    artifact.embedding_dim_ = check.integer("embedding.dim", 1, static_cast<int>(limits::kMaxEmbeddingDim));
    artifact.reps_per_class_ = check.integer("head.reps_per_class", 1, static_cast<int>(limits::kMaxRepsPerClass));
    const std::string written_fingerprint = check.string("embedding.fingerprint");
    if (!std::regex_match(written_fingerprint, std::regex("^[0-9a-f]{64}$"))) {
      check.invalid("embedding.fingerprint", check.at("embedding.fingerprint"), "it must be 64 lowercase hexadecimal digits");
    }
    const json& files = check.at("files");
    if (!files.is_object()) check.invalid("files", files, "it must be an object");
    for (const char* key : {"files", "class_names"}) {  // the limits table, as the Python schema applies it
      const json& listed = check.at(key);
      const std::size_t limit = std::string(key) == "files" ? limits::kMaxFiles : limits::kMaxClasses;
      if ((listed.is_object() || listed.is_array()) && listed.size() > limit) {
        check.invalid(key, listed, std::to_string(listed.size()) + " entries, more than the limit of " + std::to_string(limit));
      }
    }
    // every file the runtime may load is listed with its sha256 (checked below)
    std::vector<std::pair<std::string, std::string>> referenced;
    const json& graphs = check.at("graphs");
    if (!graphs.is_object()) check.invalid("graphs", graphs, "it must be an object");
    for (const auto& [format, roles] : graphs.items()) {
      if (!roles.is_object()) check.invalid("graphs." + format, roles, "it must be an object");
      for (const auto& [role, name] : roles.items()) {
        static const std::set<std::string> file_roles = {"embedding", "head", "detection", "box_embedding",
                                                        "detection_trt", "box_embedding_trt"};
        if (!file_roles.count(role)) continue;  // descriptions: opset, device, ...
        referenced.emplace_back("graphs." + format + "." + role, check.file_name("graphs." + format + "." + role));
      }
    }
    for (const char* key : {"model", "gallery"}) {
      if (!check.at(key).is_null()) referenced.emplace_back(key, check.file_name(key));
    }
    for (const auto& [key, name] : referenced) {
      if (!files.contains(name)) {
        check.invalid(key, json(name), "it is not listed in files, so it would be loaded without its sha256 being checked");
      }
    }
    std::map<std::string, std::string> sha256s;  // of each listed file's bytes, as verified
    for (const auto& [name, entry] : files.items()) {
      const json sha = entry.is_object() && entry.contains("sha256") ? entry["sha256"] : json();
      if (!sha.is_string() || !std::regex_match(sha.get<std::string>(), std::regex("^[0-9a-f]{64}$"))) {
        check.invalid("files." + name + ".sha256", sha, "it must be 64 lowercase hexadecimal digits");
      }
      fs::path path = fs::path(folder) / name;
      std::error_code ignored;
      auto root = fs::weakly_canonical(folder, ignored).string() + "/";
      if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos || name.rfind('.', 0) == 0 ||
          fs::weakly_canonical(path, ignored).string().rfind(root, 0) != 0) {  // e.g. a symbolic link out of the folder
        check.invalid("files." + name, json(fs::weakly_canonical(path, ignored).string()), "it lies outside the artifact folder");
      }
      if (!fs::is_regular_file(path, no_throw)) {
        fail("artifact " + folder + " is incomplete: " + name + " is missing; copy the whole folder or export it again");
      }
      if (!entry.contains("bytes") || !entry["bytes"].is_number_integer() ||
          fs::file_size(path, no_throw) != entry["bytes"].get<uint64_t>() ||
          (sha256s[name] = sha256_of_file(path.string())) != entry["sha256"]) {
        fail("artifact " + folder + ": " + name + " does not match its sha256 in metadata.json (changed or corrupted); "
             "export it again");
      }
    }
    // computed from the files' bytes and the preprocessing, never trusted from metadata.json
    artifact.fingerprint_ = sha256_of_text(fingerprint_text(metadata, sha256s, meta_path.string()));
    artifact.metadata_ = std::move(metadata);
    // checked now, not at the first image
    if (artifact.task_ == "classification") artifact.preprocess();
    else artifact.detection_preprocess();
    // last: a metadata.json that is wrong in a way named above is refused for that reason
    if (artifact.fingerprint_ != written_fingerprint) {
      fail("artifact " + folder + ": metadata.json's embedding.fingerprint does not match the artifact's files "
           "(edited?); export the artifact again");
    }
    return artifact;
});
}

std::string Artifact::file(const std::string& name) const { return (fs::path(folder_) / name).string(); }

std::string Artifact::graph_file(const std::string& format, const std::string& role) const {
  const json& graphs = metadata_["graphs"];
  if (!graphs.contains(format) || !graphs[format].contains(role)) {
    std::string have;
    for (const auto& [key, unused] : graphs.items()) have += (have.empty() ? "" : ", ") + key;
    fail("artifact " + folder_ + " has no " + format + " " + role + " graph (it has: " + (have.empty() ? "none" : have) +
         "); export it with metric-export --format " + format);
  }
  return file(graphs[format][role].get<std::string>());
}

PreprocessSpec Artifact::preprocess() const {
  Checker check(metadata_, (fs::path(folder_) / "metadata.json").string());
  PreprocessSpec spec;
  spec.color = check.one_of("preprocess.color", {"L", "RGB"});
  spec.resize = check.one_of("preprocess.resize", {"shorter_side", "exact"});
  spec.resize_to = check.integer("preprocess.resize_to", 1, kMaxSide);
  spec.interpolation = check.one_of("preprocess.interpolation", {"bilinear", "lanczos", "bicubic"});
  spec.crop = check.integer("preprocess.crop", 1, kMaxSide);
  const json& invert = check.at("preprocess.invert");
  if (!invert.is_boolean()) check.invalid("preprocess.invert", invert, "it must be true or false");
  spec.invert = invert.get<bool>();
  int channels = check.integer("input.channels", 1, 3);
  if (channels != spec.channels()) {
    check.invalid("preprocess.color", json(spec.color),
                  "it makes " + std::to_string(spec.channels()) + "-channel images, input.channels is " + std::to_string(channels));
  }
  spec.mean = check.numbers("preprocess.mean", channels, false);
  spec.std = check.numbers("preprocess.std", channels, true);
  for (const char* side : {"input.height", "input.width"}) {
    if (check.integer(side, 1, kMaxSide) != spec.crop) {
      check.invalid("preprocess.crop", json(spec.crop), std::string("preprocessing makes crop x crop images, ") + side +
                                                             " is " + std::to_string(check.integer(side, 1, kMaxSide)));
    }
  }
  return spec;
}

DetectionPreprocess Artifact::detection_preprocess() const {
  Checker check(metadata_, (fs::path(folder_) / "metadata.json").string());
  DetectionPreprocess spec;
  spec.min_size = check.integer("preprocess.min_size", 1, kMaxSide);
  spec.max_size = check.integer("preprocess.max_size", 1, kMaxSide);
  spec.mean = check.numbers("preprocess.mean", 3, false);
  spec.std = check.numbers("preprocess.std", 3, true);
  return spec;
}

const Gallery& Artifact::check_gallery(const Gallery& gallery, const std::string& where) const {
  // the fingerprint first: another model of the same size fits every shape and answers nonsense
  if (gallery.fingerprint() != fingerprint_) {
    fail("gallery " + where + " was made with another model: its embedding fingerprint is " +
         (gallery.fingerprint().empty() ? "missing" : gallery.fingerprint()) + ", the embedding of " + folder_ + " has " +
         fingerprint_ + "; enroll the classes again with this artifact and save a new gallery");
  }
  if (gallery.dim() != embedding_dim_ || gallery.reps_per_class() != reps_per_class_) {
    fail("gallery " + where + " holds " + std::to_string(gallery.reps_per_class()) + " x " + std::to_string(gallery.dim()) +
         "-d representatives per class; this model needs " + std::to_string(reps_per_class_) + " x " +
         std::to_string(embedding_dim_) + "-d (was it saved from another model?)");
  }
  return gallery;
}

}  // namespace repmet

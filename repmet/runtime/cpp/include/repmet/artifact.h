// An exported artifact folder: metadata.json checked (its keys, types and ranges that the C++
// runtime reads; every file it lists present with its sha256) before any model file is opened.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "repmet/gallery.h"
#include "repmet/preprocess.h"

namespace repmet {

std::string sha256_of_file(const std::string& path);

// The JSON file ``path`` (metadata.json, a COCO support file), or an Error naming it: not
// JSON, larger or nested deeper than the limits (repmet/limits.json). ``remedy`` ends errors.
nlohmann::json read_json_file(const std::string& path, const std::string& remedy);

// The text whose sha256 is an artifact's embedding fingerprint (as repmet/artifact/fingerprint.py
// writes it): "repmet-fingerprint-2", "file NAME SHA256" for each listed file but the gallery
// (``sha256s``: name -> sha256 of its bytes, as verified), then embedding.dim,
// embedding.normalized, head.distance, input and preprocess as PATH=VALUE lines. An Error
// (naming ``meta_path``) for a value it cannot write unambiguously.
std::string fingerprint_text(const nlohmann::json& metadata, const std::map<std::string, std::string>& sha256s,
                             const std::string& meta_path);

// The detector's preprocessing (metadata.json "preprocess", checked): GeneralizedRCNNTransform's.
struct DetectionPreprocess {
  int min_size = 0, max_size = 0;
  std::vector<float> mean, std;
};

class Artifact {
 public:
  static Artifact open(const std::string& folder);

  const std::string& folder() const { return folder_; }
  const nlohmann::json& metadata() const { return metadata_; }
  const std::string& task() const { return task_; }
  // The embedding fingerprint, computed from the files' bytes and the preprocessing
  // (fingerprint_text); an artifact whose metadata.json says otherwise is refused.
  const std::string& fingerprint() const { return fingerprint_; }
  int embedding_dim() const { return embedding_dim_; }
  int reps_per_class() const { return reps_per_class_; }
  // The path of a file the metadata names (checked to be listed in "files").
  std::string file(const std::string& name) const;
  // graphs[format][role], or an Error that says to export that format.
  std::string graph_file(const std::string& format, const std::string& role) const;
  PreprocessSpec preprocess() const;  // a classifier's
  DetectionPreprocess detection_preprocess() const;  // a detector's
  // ``gallery`` (read from ``where``), if it was made with this artifact's embedding; else an Error.
  const Gallery& check_gallery(const Gallery& gallery, const std::string& where) const;

 private:
  std::string folder_;
  nlohmann::json metadata_;
  std::string task_, fingerprint_;
  int embedding_dim_ = 0, reps_per_class_ = 0;
};

}  // namespace repmet

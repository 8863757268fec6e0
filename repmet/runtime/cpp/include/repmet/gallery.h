// The gallery: each enrolled class's K representatives, in the Python runtime's file format
// (gallery.npz: format "repmet-gallery-2", fingerprint, labels, representatives [C, K, D]
// float32, counts [C] int64), so that Python and C++ read each other's galleries. Immutable:
// enrolling returns a new gallery.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace repmet {

class Gallery {
 public:
  Gallery(int reps_per_class, int dim, std::string fingerprint);  // empty
  // The gallery file ``path`` (a name ending in .npz). Its declared sizes are checked against the
  // limits before anything is inflated; ``check_first`` (e.g. Artifact::check_gallery) sees its
  // fingerprint, K and dim, with no classes yet, before its representatives are inflated.
  static Gallery load(const std::string& path, const std::function<void(const Gallery&)>& check_first = {});

  // Exactly ``path`` (a name ending in .npz, not a folder), written atomically.
  void save(const std::string& path) const;
  // ``label`` enrolled (or replaced) from ``embeddings`` [n, dim]: k-means to at most K representatives.
  Gallery with_class(const std::string& label, const std::vector<float>& embeddings, int n, int seed = 0) const;
  Gallery without_class(const std::string& label) const;

  const std::vector<std::string>& labels() const { return labels_; }
  const std::vector<float>& representatives() const { return representatives_; }  // [C, K, D]
  const std::vector<int64_t>& counts() const { return counts_; }
  const std::string& fingerprint() const { return fingerprint_; }
  int size() const { return static_cast<int>(labels_.size()); }
  int reps_per_class() const { return k_; }
  int dim() const { return dim_; }

 private:
  Gallery() = default;
  std::vector<std::string> labels_;
  std::vector<float> representatives_;
  std::vector<int64_t> counts_;
  std::string fingerprint_;
  int k_ = 0, dim_ = 0;
};

// What makes ``label`` not a label (one rule with Python's repmet.artifact.labels), or "".
std::string label_problem(const std::string& label);

// k-means with k-means++ seeding (``points`` [n, dim], row-major) -> [k, dim]; k == 1 is the mean.
std::vector<float> kmeans(const std::vector<float>& points, int n, int dim, int k, int seed, int iterations = 50);

}  // namespace repmet

// What FewShotClassifier and FewShotDetector share (repmet/runtime/few_shot_runtime.py in
// Python): the artifact and its current gallery, which starts as the artifact's trained one and
// is replaced whole under a lock, so a concurrent classify or detect sees it before or after a
// change, never half of it.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "repmet/artifact.h"
#include "repmet/gallery.h"

namespace repmet {

class FewShotRuntime {
 public:
  void remove(const std::string& label);
  std::vector<std::string> labels() const;
  void save_gallery(const std::string& path) const;
  void load_gallery(const std::string& path);  // refused when made with another model
  std::shared_ptr<const Gallery> gallery() const;
  const Artifact& artifact() const { return artifact_; }

 protected:
  explicit FewShotRuntime(Artifact artifact);
  FewShotRuntime(FewShotRuntime&& other) noexcept;
  // ``label`` enrolled (or replaced) from ``n`` embeddings [n, dim]
  void add_class(const std::string& label, const std::vector<float>& embeddings, int n, int seed);

  Artifact artifact_;

 private:
  Gallery load_checked(const std::string& path) const;
  mutable std::mutex mutex_;
  std::shared_ptr<const Gallery> gallery_;
};

}  // namespace repmet

#include "repmet/few_shot_runtime.h"

namespace repmet {

FewShotRuntime::FewShotRuntime(Artifact artifact) : artifact_(std::move(artifact)) {
  gallery_ = std::make_shared<const Gallery>(artifact_.reps_per_class(), artifact_.embedding_dim(), artifact_.fingerprint());
  const auto& name = artifact_.metadata()["gallery"];
  if (name.is_string()) {
    std::string path = artifact_.file(name.get<std::string>());
    gallery_ = std::make_shared<const Gallery>(load_checked(path));
  }
}

FewShotRuntime::FewShotRuntime(FewShotRuntime&& other) noexcept
    : artifact_(std::move(other.artifact_)), gallery_(std::move(other.gallery_)) {}

void FewShotRuntime::add_class(const std::string& label, const std::vector<float>& embeddings, int n, int seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  gallery_ = std::make_shared<const Gallery>(gallery_->with_class(label, embeddings, n, seed));
}

void FewShotRuntime::remove(const std::string& label) {
  std::lock_guard<std::mutex> lock(mutex_);
  gallery_ = std::make_shared<const Gallery>(gallery_->without_class(label));
}

std::shared_ptr<const Gallery> FewShotRuntime::gallery() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return gallery_;
}

std::vector<std::string> FewShotRuntime::labels() const { return gallery()->labels(); }

void FewShotRuntime::save_gallery(const std::string& path) const { gallery()->save(path); }

Gallery FewShotRuntime::load_checked(const std::string& path) const {
  // the fingerprint and shape are checked before the representatives are inflated
  auto check = [&](const Gallery& header) { artifact_.check_gallery(header, path); };
  return artifact_.check_gallery(Gallery::load(path, check), path);
}

void FewShotRuntime::load_gallery(const std::string& path) {
  auto loaded = std::make_shared<const Gallery>(load_checked(path));
  std::lock_guard<std::mutex> lock(mutex_);
  gallery_ = std::move(loaded);
}

}  // namespace repmet

#include "repmet/classifier.h"

#include <algorithm>
#include <numeric>

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include "repmet/errors.h"
#include "repmet/preprocess.h"
#include "torch_device.h"

namespace repmet {

namespace {
constexpr int kBatch = 32;
}  // namespace

// The artifact's graphs in one of two formats: AOTInductor packages (compiled ahead of time;
// no TorchScript interpreter) or TorchScript.
struct FewShotClassifier::Models {
  torch::Device device{torch::kCPU};
  std::string format;
  torch::jit::Module embedding_ts, head_ts;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> embedding_aoti, head_aoti;

  torch::Tensor embed(const torch::Tensor& images) {
    if (format == "aoti") return embedding_aoti->run({images.to(device).contiguous()})[0];
    // channels-last, as the Python runtime's torch backends feed the network
    return embedding_ts.forward({images.to(device).contiguous(torch::MemoryFormat::ChannelsLast)}).toTensor();
  }

  torch::Tensor posteriors(const torch::Tensor& embeddings, const torch::Tensor& representatives) {
    if (format == "aoti") return head_aoti->run({embeddings.to(device), representatives.to(device)})[1];
    return head_ts.forward({embeddings.to(device), representatives.to(device)}).toTuple()->elements()[1].toTensor();
  }
};

FewShotClassifier::FewShotClassifier(Artifact artifact, std::unique_ptr<Models> models)
    : artifact_(std::move(artifact)), spec_(artifact_.preprocess()), models_(std::move(models)) {
  gallery_ = std::make_shared<const Gallery>(artifact_.reps_per_class(), artifact_.embedding_dim(), artifact_.fingerprint());
  const auto& name = artifact_.metadata()["gallery"];
  if (name.is_string()) {
    std::string path = artifact_.file(name.get<std::string>());
    gallery_ = std::make_shared<const Gallery>(artifact_.check_gallery(Gallery::load(path), path));
  }
}

FewShotClassifier::FewShotClassifier(FewShotClassifier&& other) noexcept
    : artifact_(std::move(other.artifact_)), spec_(std::move(other.spec_)), models_(std::move(other.models_)),
      gallery_(std::move(other.gallery_)) {}

FewShotClassifier::~FewShotClassifier() = default;

FewShotClassifier FewShotClassifier::load(const std::string& folder, const std::string& device, const std::string& format) {
  Artifact artifact = Artifact::open(folder);
  if (artifact.task() != "classification") {
    fail(folder + " is a " + artifact.task() + " artifact; load it with FewShotDetector, not FewShotClassifier");
  }
  auto models = std::make_unique<Models>();
  models->device = parse_device(device);
  const auto& graphs = artifact.metadata()["graphs"];
  models->format = format;
  if (format == "auto") models->format = graphs.contains("aoti") && models->device.is_cpu() ? "aoti" : "torchscript";
  if (models->format != "aoti" && models->format != "torchscript") {
    fail("format '" + format + "' is not one the C++ runtime loads; use auto, aoti or torchscript");
  }
  std::string embedding = artifact.graph_file(models->format, "embedding");
  std::string head = artifact.graph_file(models->format, "head");
  try {
    if (models->format == "aoti") {
      if (!models->device.is_cpu()) {
        fail("the aoti graphs of " + folder + " were compiled for the CPU; use device 'cpu' or format 'torchscript'");
      }
      models->embedding_aoti = std::make_unique<torch::inductor::AOTIModelPackageLoader>(embedding, "model", false, 1);
      models->head_aoti = std::make_unique<torch::inductor::AOTIModelPackageLoader>(head, "model", false, 1);
    } else {
      // straight onto the device: a frozen graph's weights are constants that .to() would leave behind
      models->embedding_ts = torch::jit::load(embedding, models->device);
      models->head_ts = torch::jit::load(head, models->device);
      models->embedding_ts.eval(), models->head_ts.eval();
    }
  } catch (const c10::Error& error) {
    fail("cannot load the " + models->format + " graphs of " + folder + " (" + std::string(error.what_without_backtrace()) +
         "); export it again with metric-export --format " + models->format);
  }
  return FewShotClassifier(std::move(artifact), std::move(models));
}

const std::string& FewShotClassifier::format() const { return models_->format; }

std::vector<float> FewShotClassifier::embed(const std::vector<ImageSource>& images) const {
  const int dim = artifact_.embedding_dim(), crop = spec_.crop, channels = spec_.channels();
  std::vector<float> out;
  out.reserve(images.size() * dim);
  c10::InferenceMode guard;
  for (std::size_t start = 0; start < images.size(); start += kBatch) {
    int n = static_cast<int>(std::min<std::size_t>(kBatch, images.size() - start));
    torch::Tensor batch = torch::empty({n, channels, crop, crop}, torch::kFloat32);
    for (int i = 0; i < n; ++i) {
      preprocess_into(images[start + i].load(channels), spec_, batch[i].data_ptr<float>());
    }
    torch::Tensor embeddings = models_->embed(batch).to(torch::kCPU).contiguous();
    if (embeddings.dim() != 2 || embeddings.size(1) != dim) {
      fail("the embedding graph of " + artifact_.folder() + " answered a tensor of shape " +
           c10::str(embeddings.sizes()) + ", not [N, " + std::to_string(dim) + "]; export the artifact again");
    }
    out.insert(out.end(), embeddings.data_ptr<float>(), embeddings.data_ptr<float>() + n * dim);
  }
  return out;
}

void FewShotClassifier::enroll(const std::string& label, const std::vector<ImageSource>& images, int seed) {
  if (label.empty()) fail("a label must be a non-empty string, got ''");
  if (images.empty()) fail("cannot enroll '" + label + "' from zero images; give at least one");
  std::vector<float> embeddings = embed(images);  // before the lock: a failure here changes nothing
  std::lock_guard<std::mutex> lock(gallery_mutex_);
  gallery_ = std::make_shared<const Gallery>(
      gallery_->with_class(label, embeddings, static_cast<int>(images.size()), seed));
}

void FewShotClassifier::remove(const std::string& label) {
  std::lock_guard<std::mutex> lock(gallery_mutex_);
  gallery_ = std::make_shared<const Gallery>(gallery_->without_class(label));
}

std::shared_ptr<const Gallery> FewShotClassifier::gallery() const {
  std::lock_guard<std::mutex> lock(gallery_mutex_);
  return gallery_;
}

std::vector<std::string> FewShotClassifier::labels() const { return gallery()->labels(); }

const Artifact& FewShotClassifier::artifact() const { return artifact_; }

std::vector<Prediction> FewShotClassifier::classify(const std::vector<ImageSource>& images, int top_k) const {
  std::shared_ptr<const Gallery> gallery = this->gallery();  // one snapshot for the whole call
  if (gallery->size() == 0) fail("the gallery is empty: enroll classes first (enroll(label, images)) or load a gallery");
  if (top_k < 1) fail("top_k must be at least 1, got " + std::to_string(top_k));
  std::vector<float> embeddings = embed(images);
  const int n = static_cast<int>(images.size()), classes = gallery->size(), dim = gallery->dim();
  c10::InferenceMode guard;
  torch::Tensor reps = torch::from_blob(const_cast<float*>(gallery->representatives().data()),
                                        {classes, gallery->reps_per_class(), dim}, torch::kFloat32);
  torch::Tensor x = torch::from_blob(embeddings.data(), {n, dim}, torch::kFloat32);
  torch::Tensor posteriors = models_->posteriors(x, reps).to(torch::kCPU).contiguous();
  std::vector<Prediction> predictions;
  const int k = std::min(top_k, classes);
  for (int i = 0; i < n; ++i) {
    const float* row = posteriors.data_ptr<float>() + static_cast<std::ptrdiff_t>(i) * classes;
    std::vector<int> order(classes);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [row](int a, int b) { return row[a] > row[b]; });
    Prediction p;
    for (int j = 0; j < k; ++j) p.labels.push_back(gallery->labels()[order[j]]), p.posteriors.push_back(row[order[j]]);
    predictions.push_back(std::move(p));
  }
  return predictions;
}

void FewShotClassifier::save_gallery(const std::string& path) const { gallery()->save(path); }

void FewShotClassifier::load_gallery(const std::string& path) {
  auto loaded = std::make_shared<const Gallery>(artifact_.check_gallery(Gallery::load(path), path));
  std::lock_guard<std::mutex> lock(gallery_mutex_);
  gallery_ = std::move(loaded);
}

}  // namespace repmet

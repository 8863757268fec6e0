#include "repmet/classifier.h"

#include <algorithm>
#include <numeric>

#include <torch/script.h>

#include "repmet/errors.h"
#include "repmet/preprocess.h"
#include "graph_pair.h"

namespace repmet {

namespace {
constexpr int kBatch = 32;
// one graph call's input at most (a batch of 32 at 224 x 224 RGB is 19 MB): large crops make
// smaller batches, never one allocation of gigabytes
constexpr int64_t kBatchBytes = 256ll << 20;
}  // namespace

struct FewShotClassifier::Models {
  std::unique_ptr<GraphPair> graphs;  // embedding, head
};

FewShotClassifier::FewShotClassifier(Artifact artifact, std::unique_ptr<Models> models)
    : FewShotRuntime(std::move(artifact)), spec_(artifact_.preprocess()), models_(std::move(models)) {}

FewShotClassifier::FewShotClassifier(FewShotClassifier&& other) noexcept
    : FewShotRuntime(std::move(other)), spec_(std::move(other.spec_)), models_(std::move(other.models_)) {}

FewShotClassifier::~FewShotClassifier() = default;

FewShotClassifier FewShotClassifier::load(const std::string& folder, const std::string& device, const std::string& format) {
  return translate_errors("cannot load the classifier " + folder, "", [&] { return load_unchecked(folder, device, format); });
}

FewShotClassifier FewShotClassifier::load_unchecked(const std::string& folder, const std::string& device,
                                                    const std::string& format) {
  Artifact artifact = Artifact::open(folder);
  if (artifact.task() != "classification") {
    fail(folder + " is a " + artifact.task() + " artifact; load it with FewShotDetector, not FewShotClassifier");
  }
  auto models = std::make_unique<Models>();
  models->graphs = GraphPair::load(artifact, device, format, {"embedding", "head"});
  return FewShotClassifier(std::move(artifact), std::move(models));
}

const std::string& FewShotClassifier::format() const { return models_->graphs->format(); }

std::vector<float> FewShotClassifier::embed(const std::vector<ImageSource>& images) const {
  return translate_errors("cannot embed the images", "", [&] { return embed_unchecked(images); });
}

std::vector<float> FewShotClassifier::embed_unchecked(const std::vector<ImageSource>& images) const {
  const int dim = artifact_.embedding_dim(), crop = spec_.crop, channels = spec_.channels();
  const int64_t per_image = int64_t{4} * channels * crop * crop;  // float32, crop <= max_side: no overflow
  const std::size_t batch_size = static_cast<std::size_t>(std::clamp<int64_t>(kBatchBytes / per_image, 1, kBatch));
  std::vector<float> out;
  out.reserve(images.size() * dim);
  c10::InferenceMode guard;
  for (std::size_t start = 0; start < images.size(); start += batch_size) {
    int n = static_cast<int>(std::min<std::size_t>(batch_size, images.size() - start));
    torch::Tensor batch = torch::empty({n, channels, crop, crop}, torch::kFloat32);
    for (int i = 0; i < n; ++i) {
      preprocess_into(images[start + i].load(channels), spec_, batch[i].data_ptr<float>());
    }
    torch::Tensor embeddings =
        models_->graphs->run(0, {models_->graphs->images(batch)})[0].to(torch::kCPU, torch::kFloat32).contiguous();
    if (embeddings.dim() != 2 || embeddings.size(0) != n || embeddings.size(1) != dim) {
      fail("the embedding graph of " + artifact_.folder() + " answered a tensor of shape " +
           c10::str(embeddings.sizes()) + ", not [N, " + std::to_string(dim) + "]; export the artifact again");
    }
    out.insert(out.end(), embeddings.data_ptr<float>(), embeddings.data_ptr<float>() + n * dim);
  }
  return out;
}

void FewShotClassifier::enroll(const std::string& label, const std::vector<ImageSource>& images, int seed) {
  translate_errors("cannot enroll '" + label + "'", "", [&] { enroll_unchecked(label, images, seed); });
}

void FewShotClassifier::enroll_unchecked(const std::string& label, const std::vector<ImageSource>& images, int seed) {
  if (const std::string why = label_problem(label); !why.empty()) fail(why);
  if (images.empty()) fail("cannot enroll '" + label + "' from zero images; give at least one");
  std::vector<float> embeddings = embed_unchecked(images);  // a failure here changes nothing
  add_class(label, embeddings, static_cast<int>(images.size()), seed);
}

std::vector<Prediction> FewShotClassifier::classify(const std::vector<ImageSource>& images, int top_k) const {
  return translate_errors("cannot classify the images", "", [&] { return classify_unchecked(images, top_k); });
}

std::vector<Prediction> FewShotClassifier::classify_unchecked(const std::vector<ImageSource>& images, int top_k) const {
  std::shared_ptr<const Gallery> gallery = this->gallery();  // one snapshot for the whole call
  if (gallery->size() == 0) fail("the gallery is empty: enroll classes first (enroll(label, images)) or load a gallery");
  if (top_k < 1) fail("top_k must be at least 1, got " + std::to_string(top_k));
  std::vector<float> embeddings = embed_unchecked(images);
  const int n = static_cast<int>(images.size()), classes = gallery->size(), dim = gallery->dim();
  c10::InferenceMode guard;
  torch::Tensor reps = torch::from_blob(const_cast<float*>(gallery->representatives().data()),
                                        {classes, gallery->reps_per_class(), dim}, torch::kFloat32);
  torch::Tensor x = torch::from_blob(embeddings.data(), {n, dim}, torch::kFloat32);
  std::vector<torch::Tensor> outputs = models_->graphs->run(1, {x, reps});
  if (outputs.size() < 2 || outputs[1].dim() != 2 || outputs[1].size(0) != n || outputs[1].size(1) != classes) {
    fail("the head graph of " + artifact_.folder() + " answered no [" + std::to_string(n) + ", " +
         std::to_string(classes) + "] posteriors; export the artifact again");
  }
  torch::Tensor posteriors = outputs[1].to(torch::kCPU, torch::kFloat32).contiguous();
  std::vector<Prediction> predictions;
  const int k = std::min(top_k, classes);
  for (int i = 0; i < n; ++i) {
    const float* row = posteriors.data_ptr<float>() + static_cast<std::ptrdiff_t>(i) * classes;
    std::vector<int> order(classes);
    std::iota(order.begin(), order.end(), 0);
    // the k best only (a full sort of 100,000 classes a query cost 5 ms at batch 32); ties by class
    // order, as a stable sort would leave them
    std::partial_sort(order.begin(), order.begin() + k, order.end(),
                      [row](int a, int b) { return row[a] > row[b] || (row[a] == row[b] && a < b); });
    Prediction p;
    for (int j = 0; j < k; ++j) p.labels.push_back(gallery->labels()[order[j]]), p.posteriors.push_back(row[order[j]]);
    predictions.push_back(std::move(p));
  }
  return predictions;
}

}  // namespace repmet

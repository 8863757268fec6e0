#include "repmet/detector.h"

#include <charconv>
#include <cmath>

#include <torch/script.h>

#include "repmet/errors.h"
#include "repmet/limits.h"
#include "graph_pair.h"

namespace repmet {
namespace {

std::string python_float(float value) {  // as Python prints a float: 10.0, 12.5
  char text[32];
  auto end = std::to_chars(text, text + sizeof text, static_cast<double>(value)).ptr;
  std::string out(text, end);
  if (out.find_first_of(".en") == std::string::npos) out += ".0";
  return out;
}

std::string box_text(const Box& box) {
  return "[" + python_float(box[0]) + ", " + python_float(box[1]) + ", " + python_float(box[2]) + ", " +
         python_float(box[3]) + "]";
}

// The boxes of one example, checked as repmet/runtime/detector.py checks them.
void check_boxes(const std::vector<Box>& boxes, int height, int width, const std::string& name) {
  if (boxes.empty()) fail(name + ": no boxes; give at least one [x1, y1, x2, y2]");
  for (const Box& box : boxes) {
    bool finite = std::isfinite(box[0]) && std::isfinite(box[1]) && std::isfinite(box[2]) && std::isfinite(box[3]);
    if (!finite || box[2] <= box[0] || box[3] <= box[1]) {
      fail(name + ": box " + box_text(box) + " is empty; boxes are [x1, y1, x2, y2] with x1 < x2 and y1 < y2");
    }
    if (box[0] < 0 || box[1] < 0 || box[2] > width || box[3] > height) {
      fail(name + ": box " + box_text(box) + " lies outside the " + std::to_string(width) + "x" + std::to_string(height) +
           " image");
    }
  }
}

}  // namespace

struct FewShotDetector::Models {
  std::unique_ptr<GraphPair> graphs;  // detection, box embedding

  torch::Tensor image(const PreparedImage& prepared) const {
    return graphs->images(torch::from_blob(const_cast<float*>(prepared.tensor.data()),
                                           {1, 3, prepared.canvas, prepared.canvas}, torch::kFloat32));
  }
};

FewShotDetector::FewShotDetector(Artifact artifact, std::unique_ptr<Models> models)
    : FewShotRuntime(std::move(artifact)), models_(std::move(models)) {
  DetectionPreprocess spec = artifact_.detection_preprocess();  // checked: a sentence naming metadata.json
  min_size_ = spec.min_size, max_size_ = spec.max_size;
  mean_ = std::move(spec.mean), std_ = std::move(spec.std);
}

FewShotDetector::FewShotDetector(FewShotDetector&& other) noexcept
    : FewShotRuntime(std::move(other)), min_size_(other.min_size_), max_size_(other.max_size_),
      mean_(std::move(other.mean_)), std_(std::move(other.std_)), models_(std::move(other.models_)) {}

FewShotDetector::~FewShotDetector() = default;

FewShotDetector FewShotDetector::load(const std::string& folder, const std::string& device, const std::string& format) {
  return translate_errors("cannot load the detector " + folder, "", [&] { return load_unchecked(folder, device, format); });
}

FewShotDetector FewShotDetector::load_unchecked(const std::string& folder, const std::string& device,
                                                const std::string& format) {
  Artifact artifact = Artifact::open(folder);
  if (artifact.task() != "detection") {
    fail(folder + " is a " + artifact.task() + " artifact; load it with FewShotClassifier, not FewShotDetector");
  }
  register_torchvision_ops();  // before the graphs that call them load
  auto models = std::make_unique<Models>();
  models->graphs = GraphPair::load(artifact, device, format, {"detection", "box_embedding"});
  return FewShotDetector(std::move(artifact), std::move(models));
}

const std::string& FewShotDetector::format() const { return models_->graphs->format(); }

PreparedImage FewShotDetector::prepare(const ImageSource& image) const {
  return prepare_detection_image(image.load(3), min_size_, max_size_, mean_, std_);
}

void FewShotDetector::enroll(const std::string& label, const std::vector<BoxedImage>& examples, int seed) {
  translate_errors("cannot enroll '" + label + "'", "", [&] { enroll_unchecked(label, examples, seed); });
}

void FewShotDetector::enroll_unchecked(const std::string& label, const std::vector<BoxedImage>& examples, int seed) {
  if (const std::string why = label_problem(label); !why.empty()) fail(why);
  if (examples.empty()) fail("cannot enroll '" + label + "' from zero examples; give at least one (image, boxes) pair");
  std::size_t boxes = 0;
  for (const BoxedImage& example : examples) boxes += example.boxes.size();
  if (boxes > static_cast<std::size_t>(limits::kMaxBoxesPerEnroll)) {
    fail("cannot enroll '" + label + "' from " + std::to_string(boxes) + " boxes, more than the limit of " +
         std::to_string(limits::kMaxBoxesPerEnroll) + " in one enroll; a few boxes per class are what enrolling needs (k-means "
         "keeps " + std::to_string(artifact_.reps_per_class()) + " representatives of them anyway)");
  }
  std::vector<float> embeddings;
  int count = 0;
  c10::InferenceMode guard;
  for (const BoxedImage& example : examples) {
    PreparedImage prepared = prepare(example.image);
    check_boxes(example.boxes, prepared.original_height, prepared.original_width, example.image.name());
    std::vector<float> resized;
    for (const Box& box : example.boxes) {
      Box r = prepared.to_resized(box);
      resized.insert(resized.end(), r.begin(), r.end());
    }
    const int m = static_cast<int>(example.boxes.size());
    torch::Tensor boxes = torch::from_blob(resized.data(), {m, 4}, torch::kFloat32);
    torch::Tensor out =
        models_->graphs->run(1, {models_->image(prepared), boxes})[0].to(torch::kCPU, torch::kFloat32).contiguous();
    if (out.dim() != 2 || out.size(0) != m || out.size(1) != artifact_.embedding_dim()) {
      fail("the box_embedding graph of " + artifact_.folder() + " answered a tensor of shape " + c10::str(out.sizes()) +
           ", not [" + std::to_string(m) + ", " + std::to_string(artifact_.embedding_dim()) + "]; export the artifact again");
    }
    embeddings.insert(embeddings.end(), out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
    count += m;
  }
  add_class(label, embeddings, count, seed);
}

void FewShotDetector::enroll(const std::string& label, const ImageSource& image, const std::vector<Box>& boxes, int seed) {
  enroll(label, std::vector<BoxedImage>{{image, boxes}}, seed);
}

std::vector<std::vector<Detection>> FewShotDetector::detect(const std::vector<ImageSource>& images,
                                                           float score_threshold) const {
  return translate_errors("cannot detect", "", [&] { return detect_unchecked(images, score_threshold); });
}

std::vector<std::vector<Detection>> FewShotDetector::detect_unchecked(const std::vector<ImageSource>& images,
                                                                     float score_threshold) const {
  if (!(score_threshold >= 0.0f && score_threshold <= 1.0f)) {  // NaN included: it would keep every detection
    fail("score_threshold must be a number from 0 to 1, got " + python_float(score_threshold));
  }
  std::shared_ptr<const Gallery> gallery = this->gallery();  // one snapshot for the whole call
  if (gallery->size() == 0) fail("the gallery is empty: enroll classes first, or load a gallery");
  c10::InferenceMode guard;
  torch::Tensor reps = torch::from_blob(const_cast<float*>(gallery->representatives().data()),
                                        {gallery->size(), gallery->reps_per_class(), gallery->dim()}, torch::kFloat32);
  std::vector<std::vector<Detection>> results;
  for (const ImageSource& image : images) {
    PreparedImage prepared = prepare(image);
    torch::Tensor size = torch::tensor({prepared.height, prepared.width}, torch::kFloat32);
    std::vector<torch::Tensor> outputs = models_->graphs->run(0, {models_->image(prepared), size, reps});
    if (outputs.size() < 4) {
      fail("the detection graph of " + artifact_.folder() + " answered " + std::to_string(outputs.size()) +
           " outputs, not 4 (boxes, scores, labels, count); export the artifact again");
    }
    torch::Tensor boxes = outputs[0].to(torch::kCPU, torch::kFloat32).contiguous();
    torch::Tensor scores = outputs[1].to(torch::kCPU, torch::kFloat32).contiguous();
    torch::Tensor labels = outputs[2].to(torch::kCPU, torch::kLong).contiguous();
    const int64_t count = outputs[3].to(torch::kCPU).item<int64_t>();
    if (count < 0 || count > scores.numel() || count > labels.numel() || boxes.numel() < count * 4) {
      fail("the detection graph of " + artifact_.folder() + " answered " + std::to_string(count) +
           " detections with fewer boxes, scores or labels; export the artifact again");
    }
    std::vector<Detection> found;
    for (int64_t i = 0; i < count; ++i) {
      float score = scores[i].item<float>();
      if (score < score_threshold) continue;
      const float* b = boxes.data_ptr<float>() + i * 4;
      const int64_t label = labels[i].item<int64_t>();  // 1-based: 0 is the background
      if (label < 1 || label > gallery->size()) {
        fail("the detection graph of " + artifact_.folder() + " answered class " + std::to_string(label) + " of " +
             std::to_string(gallery->size()) + "; export the artifact again");
      }
      found.push_back({prepared.to_original({b[0], b[1], b[2], b[3]}), gallery->labels()[label - 1], score});
    }
    results.push_back(std::move(found));
  }
  return results;
}

}  // namespace repmet

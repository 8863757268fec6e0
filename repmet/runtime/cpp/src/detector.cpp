#include "repmet/detector.h"

#include <charconv>
#include <cmath>

#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include "repmet/errors.h"
#include "torch_device.h"

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

// The artifact's two graphs as AOTInductor packages or TorchScript.
struct FewShotDetector::Models {
  torch::Device device{torch::kCPU};
  std::string format;
  torch::jit::Module detection_ts, box_embedding_ts;
  std::unique_ptr<torch::inductor::AOTIModelPackageLoader> detection_aoti, box_embedding_aoti;

  torch::Tensor image(const PreparedImage& prepared) const {
    torch::Tensor t = torch::from_blob(const_cast<float*>(prepared.tensor.data()), {1, 3, prepared.canvas, prepared.canvas},
                                       torch::kFloat32).to(device);
    // TorchScript: channels-last, as the Python runtime feeds it; AOTInductor: NCHW, as compiled
    return format == "aoti" ? t.contiguous() : t.contiguous(torch::MemoryFormat::ChannelsLast);
  }

  std::vector<torch::Tensor> detect(const torch::Tensor& image, const torch::Tensor& size, const torch::Tensor& reps) {
    if (format == "aoti") return detection_aoti->run({image, size, reps});
    auto tuple = detection_ts.forward({image, size, reps}).toTuple();  // held: elements() refers into it
    std::vector<torch::Tensor> out;
    for (const auto& value : tuple->elements()) out.push_back(value.toTensor());
    return out;
  }

  torch::Tensor embed(const torch::Tensor& image, const torch::Tensor& boxes) {
    if (format == "aoti") return box_embedding_aoti->run({image, boxes})[0];
    return box_embedding_ts.forward({image, boxes}).toTensor();
  }
};

FewShotDetector::FewShotDetector(Artifact artifact, std::unique_ptr<Models> models)
    : artifact_(std::move(artifact)), models_(std::move(models)) {
  const auto& spec = artifact_.metadata()["preprocess"];
  min_size_ = spec.at("min_size").get<int>(), max_size_ = spec.at("max_size").get<int>();
  mean_ = spec.at("mean").get<std::vector<float>>(), std_ = spec.at("std").get<std::vector<float>>();
  if (mean_.size() != 3 || std_.size() != 3) fail(artifact_.folder() + "/metadata.json: preprocess.mean and std need 3 values; export the artifact again with metric-export");
  gallery_ = std::make_shared<const Gallery>(artifact_.reps_per_class(), artifact_.embedding_dim(), artifact_.fingerprint());
  const auto& name = artifact_.metadata()["gallery"];
  if (name.is_string()) {
    std::string path = artifact_.file(name.get<std::string>());
    gallery_ = std::make_shared<const Gallery>(artifact_.check_gallery(Gallery::load(path), path));
  }
}

FewShotDetector::FewShotDetector(FewShotDetector&& other) noexcept
    : artifact_(std::move(other.artifact_)), min_size_(other.min_size_), max_size_(other.max_size_),
      mean_(std::move(other.mean_)), std_(std::move(other.std_)), models_(std::move(other.models_)),
      gallery_(std::move(other.gallery_)) {}

FewShotDetector::~FewShotDetector() = default;

FewShotDetector FewShotDetector::load(const std::string& folder, const std::string& device, const std::string& format) {
  Artifact artifact = Artifact::open(folder);
  if (artifact.task() != "detection") {
    fail(folder + " is a " + artifact.task() + " artifact; load it with FewShotClassifier, not FewShotDetector");
  }
  auto models = std::make_unique<Models>();
  models->device = parse_device(device);
  models->format = format;
  if (format == "auto") {
    models->format = artifact.metadata()["graphs"].contains("aoti") && models->device.is_cpu() ? "aoti" : "torchscript";
  }
  if (models->format != "aoti" && models->format != "torchscript") {
    fail("format '" + format + "' is not one the C++ runtime loads; use auto, aoti or torchscript");
  }
  if (models->format == "aoti" && !models->device.is_cpu()) {
    fail("the aoti graphs of " + folder + " were compiled for the CPU; use device 'cpu' or format 'torchscript'");
  }
  std::string detection = artifact.graph_file(models->format, "detection");
  std::string box_embedding = artifact.graph_file(models->format, "box_embedding");
  register_torchvision_ops();
  try {
    if (models->format == "aoti") {
      models->detection_aoti = std::make_unique<torch::inductor::AOTIModelPackageLoader>(detection);
      models->box_embedding_aoti = std::make_unique<torch::inductor::AOTIModelPackageLoader>(box_embedding);
    } else {
      models->detection_ts = torch::jit::load(detection, models->device);
      models->box_embedding_ts = torch::jit::load(box_embedding, models->device);
      models->detection_ts.eval(), models->box_embedding_ts.eval();
    }
  } catch (const c10::Error& error) {
    fail("cannot load the " + models->format + " graphs of " + folder + " (" + std::string(error.what_without_backtrace()) +
         "); export it again with metric-export --format " + models->format);
  }
  return FewShotDetector(std::move(artifact), std::move(models));
}

const std::string& FewShotDetector::format() const { return models_->format; }

PreparedImage FewShotDetector::prepare(const ImageSource& image) const {
  return prepare_detection_image(image.load(3), min_size_, max_size_, mean_, std_);
}

void FewShotDetector::enroll(const std::string& label, const std::vector<BoxedImage>& examples, int seed) {
  if (label.empty()) fail("a label must be a non-empty string, got ''");
  if (examples.empty()) fail("cannot enroll '" + label + "' from zero examples; give at least one (image, boxes) pair");
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
    torch::Tensor boxes = torch::from_blob(resized.data(), {m, 4}, torch::kFloat32).to(models_->device);
    torch::Tensor out = models_->embed(models_->image(prepared), boxes).to(torch::kCPU).contiguous();
    embeddings.insert(embeddings.end(), out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
    count += m;
  }
  std::lock_guard<std::mutex> lock(gallery_mutex_);
  gallery_ = std::make_shared<const Gallery>(gallery_->with_class(label, embeddings, count, seed));
}

void FewShotDetector::enroll(const std::string& label, const ImageSource& image, const std::vector<Box>& boxes, int seed) {
  enroll(label, std::vector<BoxedImage>{{image, boxes}}, seed);
}

std::vector<std::vector<Detection>> FewShotDetector::detect(const std::vector<ImageSource>& images,
                                                           float score_threshold) const {
  std::shared_ptr<const Gallery> gallery = this->gallery();  // one snapshot for the whole call
  if (gallery->size() == 0) fail("the gallery is empty: enroll classes first, or load a gallery");
  c10::InferenceMode guard;
  torch::Tensor reps = torch::from_blob(const_cast<float*>(gallery->representatives().data()),
                                        {gallery->size(), gallery->reps_per_class(), gallery->dim()}, torch::kFloat32)
                           .to(models_->device);
  std::vector<std::vector<Detection>> results;
  for (const ImageSource& image : images) {
    PreparedImage prepared = prepare(image);
    torch::Tensor size = torch::tensor({prepared.height, prepared.width}, torch::kFloat32).to(models_->device);
    std::vector<torch::Tensor> outputs = models_->detect(models_->image(prepared), size, reps);
    torch::Tensor boxes = outputs[0].to(torch::kCPU).contiguous();
    torch::Tensor scores = outputs[1].to(torch::kCPU).contiguous();
    torch::Tensor labels = outputs[2].to(torch::kCPU, torch::kLong).contiguous();
    const int64_t count = outputs[3].to(torch::kCPU).item<int64_t>();
    std::vector<Detection> found;
    for (int64_t i = 0; i < count; ++i) {
      float score = scores[i].item<float>();
      if (score < score_threshold) continue;
      const float* b = boxes.data_ptr<float>() + i * 4;
      found.push_back({prepared.to_original({b[0], b[1], b[2], b[3]}), gallery->labels()[labels[i].item<int64_t>() - 1], score});
    }
    results.push_back(std::move(found));
  }
  return results;
}

void FewShotDetector::remove(const std::string& label) {
  std::lock_guard<std::mutex> lock(gallery_mutex_);
  gallery_ = std::make_shared<const Gallery>(gallery_->without_class(label));
}

std::shared_ptr<const Gallery> FewShotDetector::gallery() const {
  std::lock_guard<std::mutex> lock(gallery_mutex_);
  return gallery_;
}

std::vector<std::string> FewShotDetector::labels() const { return gallery()->labels(); }

void FewShotDetector::save_gallery(const std::string& path) const { gallery()->save(path); }

void FewShotDetector::load_gallery(const std::string& path) {
  auto loaded = std::make_shared<const Gallery>(artifact_.check_gallery(Gallery::load(path), path));
  std::lock_guard<std::mutex> lock(gallery_mutex_);
  gallery_ = std::move(loaded);
}

}  // namespace repmet

// Few-shot detection from an exported detector artifact, mirroring repmet.runtime.FewShotDetector:
//
//   auto detector = repmet::FewShotDetector::load("artifacts/fsod_detector", "cpu");
//   detector.enroll("mug", {{"kitchen.jpg", {{10, 20, 110, 140}}}});
//   for (const auto& d : detector.detect({"room.jpg"}, 0.2)[0]) d.box, d.label, d.score;
//
// The models are the artifact's AOTInductor packages (detection.pt2, box_embedding.pt2) or
// TorchScript graphs (detection.ts, box_embedding.ts); their RoIAlign and NMS are torchvision's
// operators, which this library provides for C++ processes.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "repmet/artifact.h"
#include "repmet/errors.h"
#include "repmet/detection_preprocess.h"
#include "repmet/gallery.h"
#include "repmet/few_shot_runtime.h"
#include "repmet/image.h"

namespace repmet {

struct Detection {
  Box box;  // x1, y1, x2, y2 in the image's own pixels
  std::string label;
  float score = 0;
};

struct BoxedImage {
  ImageSource image;
  std::vector<Box> boxes;
};

class FewShotDetector : public FewShotRuntime {
 public:
  // format: "int8" or "onnx" (ONNX Runtime, CPU; when the build has it), "aoti" (AOTInductor packages, CPU),
  // "torchscript", or "auto" (as FewShotClassifier::load)
  static FewShotDetector load(const std::string& folder, const std::string& device = "cpu",
                              const std::string& format = "auto");
  FewShotDetector(FewShotDetector&&) noexcept;
  ~FewShotDetector();

  // ``label`` added (or replaced) from boxed examples; more boxes than K are reduced by k-means.
  void enroll(const std::string& label, const std::vector<BoxedImage>& examples, int seed = 0);
  void enroll(const std::string& label, const ImageSource& image, const std::vector<Box>& boxes, int seed = 0);
  // One list per image, best first.
  std::vector<std::vector<Detection>> detect(const std::vector<ImageSource>& images, float score_threshold = 0.2f) const;
  const std::string& format() const;  // the graphs in use: "int8", "onnx", "aoti" or "torchscript"

 private:
  struct Models;
  FewShotDetector(Artifact artifact, std::unique_ptr<Models> models);
  PreparedImage prepare(const ImageSource& image) const;
  // the work of the public functions, which turn any exception into an Error (errors.h)
  static FewShotDetector load_unchecked(const std::string& folder, const std::string& device, const std::string& format);
  void enroll_unchecked(const std::string& label, const std::vector<BoxedImage>& examples, int seed);
  std::vector<std::vector<Detection>> detect_unchecked(const std::vector<ImageSource>& images, float score_threshold) const;

  int min_size_ = 0, max_size_ = 0;
  std::vector<float> mean_, std_;
  std::unique_ptr<Models> models_;
};

// torchvision's RoIAlign and NMS for this process, unless torchvision registered them (idempotent).
void register_torchvision_ops();

}  // namespace repmet

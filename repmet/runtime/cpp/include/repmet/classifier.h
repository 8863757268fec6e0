// Few-shot classification from an exported artifact, mirroring repmet.runtime.FewShotClassifier:
//
//   auto classifier = repmet::FewShotClassifier::load("artifacts/omniglot", "cpu");
//   classifier.enroll("a", {"a1.png", "a2.png"});
//   for (const auto& p : classifier.classify({"query.png"}, 3)) p.labels[0], p.posteriors[0];
//
// The models are the artifact's AOTInductor packages (embedding.pt2, head.pt2) or TorchScript
// graphs (embedding.ts, head.ts). classify may run
// in several threads; enroll, remove and load_gallery swap in a new immutable gallery.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "repmet/artifact.h"
#include "repmet/errors.h"
#include "repmet/gallery.h"
#include "repmet/few_shot_runtime.h"
#include "repmet/image.h"

namespace repmet {

struct Prediction {
  std::vector<std::string> labels;  // the top-k, most probable first
  std::vector<float> posteriors;
};

class FewShotClassifier : public FewShotRuntime {
 public:
  // format: "int8" or "onnx" (ONNX Runtime, CPU; when the build has it), "aoti" (AOTInductor
  // packages, CPU), "torchscript", or "auto": on the CPU the first of int8, onnx, aoti,
  // torchscript that the artifact has (and the build runs), on a GPU torchscript.
  static FewShotClassifier load(const std::string& folder, const std::string& device = "cpu",
                                const std::string& format = "auto");
  FewShotClassifier(FewShotClassifier&&) noexcept;
  ~FewShotClassifier();

  void enroll(const std::string& label, const std::vector<ImageSource>& images, int seed = 0);
  std::vector<Prediction> classify(const std::vector<ImageSource>& images, int top_k = 1) const;
  // [n, dim] embeddings, row-major.
  std::vector<float> embed(const std::vector<ImageSource>& images) const;
  const std::string& format() const;  // the graphs in use: "int8", "onnx", "aoti" or "torchscript"

 private:
  struct Models;
  FewShotClassifier(Artifact artifact, std::unique_ptr<Models> models);
  // the work of the public functions, which turn any exception into an Error (errors.h)
  static FewShotClassifier load_unchecked(const std::string& folder, const std::string& device, const std::string& format);
  void enroll_unchecked(const std::string& label, const std::vector<ImageSource>& images, int seed);
  std::vector<Prediction> classify_unchecked(const std::vector<ImageSource>& images, int top_k) const;
  std::vector<float> embed_unchecked(const std::vector<ImageSource>& images) const;

  PreprocessSpec spec_;
  std::unique_ptr<Models> models_;
};

}  // namespace repmet

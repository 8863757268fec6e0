// repmet-bench ARTIFACT [--format auto|aoti|torchscript] [--batch B] [--rounds R] [--threads T] --images IMG...
//
// Speed of the C++ runtime on real images, for benchmarks/cpp_runtime.py: a classifier
// classifies the images in batches of B (decoding and preprocessing included; the gallery is
// the trained one, or the first images enrolled as classes); a detector detects them one by
// one. Prints JSON: the milliseconds per image of every round after a warm-up round. With
// --threads T, a classifier also classifies the images from T threads at once and reports
// whether every thread got the sequential answer ("threads_agree").
#include <chrono>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "repmet/artifact.h"
#include "repmet/classifier.h"
#include "repmet/detector.h"
#include "repmet/errors.h"

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string artifact, format = "auto";
  int batch = 1, rounds = 3, threads = 0;
  std::vector<repmet::ImageSource> images;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--format" && i + 1 < argc) format = argv[++i];
    else if (arg == "--batch" && i + 1 < argc) batch = std::stoi(argv[++i]);
    else if (arg == "--rounds" && i + 1 < argc) rounds = std::stoi(argv[++i]);
    else if (arg == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (arg == "--images") { while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) images.emplace_back(argv[++i]); }
    else if (artifact.empty()) artifact = arg;
    else { std::cerr << "error: unexpected argument " << arg << "\n"; return 2; }
  }
  if (artifact.empty() || images.empty()) {
    std::cerr << "usage: repmet-bench ARTIFACT [--format auto|aoti|torchscript] [--batch B] [--rounds R] --images IMG...\n";
    return 2;
  }
  try {
    std::vector<double> per_image;
    std::string used = "torchscript";
    auto timed = [&](auto&& work) {
      for (int round = 0; round <= rounds; ++round) {
        auto start = Clock::now();
        work();
        double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        if (round > 0) per_image.push_back(ms / images.size());  // round 0 warms up
      }
    };
    const bool is_detector = repmet::Artifact::open(artifact).task() == "detection";
    if (is_detector) {
      auto detector = repmet::FewShotDetector::load(artifact, "cpu", format);
      used = detector.format();
      timed([&] { detector.detect(images, 0.05f); });
    } else {
      auto classifier = repmet::FewShotClassifier::load(artifact, "cpu", format);
      used = classifier.format();
      if (classifier.labels().empty()) {
        for (std::size_t c = 0; c < std::min<std::size_t>(5, images.size()); ++c) {
          classifier.enroll("class" + std::to_string(c), {images[c]});
        }
      }
      timed([&] {
        for (std::size_t start = 0; start < images.size(); start += batch) {
          std::vector<repmet::ImageSource> part(images.begin() + start,
                                                images.begin() + std::min(images.size(), start + batch));
          classifier.classify(part, 1);
        }
      });
    }
    nlohmann::json report{{"format", used}, {"batch", batch}, {"ms_per_image", per_image}};
    if (threads > 0 && !is_detector) {
      auto classifier = repmet::FewShotClassifier::load(artifact, "cpu", format);
      for (std::size_t c = 0; c < std::min<std::size_t>(5, images.size()); ++c) {
        classifier.enroll("class" + std::to_string(c), {images[c]});
      }
      auto expected = classifier.classify(images, 3);
      std::vector<std::vector<repmet::Prediction>> answers(threads);
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { answers[t] = classifier.classify(images, 3); });
      for (auto& thread : pool) thread.join();
      bool agree = true;
      for (const auto& answer : answers) {
        for (std::size_t i = 0; i < images.size(); ++i) {
          agree = agree && answer[i].labels == expected[i].labels;
          for (std::size_t j = 0; j < answer[i].posteriors.size(); ++j) {
            agree = agree && std::abs(answer[i].posteriors[j] - expected[i].posteriors[j]) <= 1e-6f;
          }
        }
      }
      report["threads_agree"] = agree;
    }
    std::cout << report.dump() << "\n";
  } catch (const repmet::Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  }
  return 0;
}

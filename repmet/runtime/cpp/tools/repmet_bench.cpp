// repmet-bench ARTIFACT [--format auto|int8|onnx|aoti|torchscript] [--batch B] [--rounds R] [--threads T]
//              [--gallery FILE] --images IMG...
//
// Speed of the C++ runtime on real images, for benchmarks/cpp_runtime.py: a classifier
// classifies the images in batches of B (decoding and preprocessing included; the gallery is
// FILE, or the trained one, or the first images enrolled as classes); a detector detects them one by
// one. Prints JSON: the milliseconds per image of every round after a warm-up round. With
// --threads T, a classifier also classifies the images from T threads at once and reports
// whether every thread got the sequential answer ("threads_agree").
#include <algorithm>
#include <chrono>
#include <iostream>
#include <thread>

#include <nlohmann/json.hpp>

#include "repmet/artifact.h"
#include "repmet/classifier.h"
#include "repmet/detector.h"
#include "repmet/errors.h"

using Clock = std::chrono::steady_clock;

namespace {

// --batch, --rounds, --threads: a whole number from ``low`` to 100000, or a sentence
int count_option(const std::string& option, const std::string& text, int low) {
  if (text.empty() || text.size() > 6 || text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoi(text) < low || std::stoi(text) > 100000) {
    repmet::fail(option + " must be a whole number from " + std::to_string(low) + " to 100000, got '" + text.substr(0, 40) + "'");
  }
  return std::stoi(text);  // digits checked above
}

}  // namespace

int main(int argc, char** argv) {
  std::string artifact, format = "auto", gallery;
  int batch = 1, rounds = 3, threads = 0;
  std::vector<repmet::ImageSource> images;
  try {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "--format" && i + 1 < argc) format = argv[++i];
      else if (arg == "--batch" && i + 1 < argc) batch = count_option(arg, argv[++i], 1);
      else if (arg == "--rounds" && i + 1 < argc) rounds = count_option(arg, argv[++i], 1);
      else if (arg == "--threads" && i + 1 < argc) threads = std::min(count_option(arg, argv[++i], 0), 256);
      else if (arg == "--gallery" && i + 1 < argc) gallery = argv[++i];
      else if (arg == "--images") { while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) images.emplace_back(argv[++i]); }
      else if (artifact.empty()) artifact = arg;
      else repmet::fail("unexpected argument " + arg);
    }
  } catch (const repmet::Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  }
  if (artifact.empty() || images.empty()) {
    std::cerr << "usage: repmet-bench ARTIFACT [--format auto|int8|onnx|aoti|torchscript] [--batch B] [--rounds R] "
                 "[--gallery FILE] --images IMG...\n";
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
      if (!gallery.empty()) classifier.load_gallery(gallery);
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
      std::vector<std::string> failures(threads);  // an exception must not leave a thread (std::terminate)
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          try {
            answers[t] = classifier.classify(images, 3);
          } catch (const std::exception& error) {
            failures[t] = error.what();
          }
        });
      }
      for (auto& thread : pool) thread.join();
      for (const auto& failure : failures) {
        if (!failure.empty()) repmet::fail(failure);
      }
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
  } catch (const std::exception& error) {  // a safety net: the library throws only repmet::Error
    std::cerr << "error: " << repmet::brief(error.what()) << "\n";
    return 1;
  } catch (...) {
    std::cerr << "error: an unknown error\n";
    return 1;
  }
  return 0;
}

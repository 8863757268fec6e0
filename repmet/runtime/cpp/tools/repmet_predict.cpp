// repmet-predict ARTIFACT --support DIR --query IMG... [--top-k K] [--json] [--gallery FILE]
//                [--save-gallery FILE] [--device cpu|cuda]
//
// The C++ twin of metric-predict for classifiers: DIR holds one sub-folder of images per
// class; with --json, one object per query in query order with its top-k labels and
// posteriors, as metric-predict --json prints them.
#include <algorithm>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "repmet/classifier.h"
#include "repmet/errors.h"

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kImageSuffixes = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"};

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::vector<fs::path> visible_sorted(const fs::path& folder) {
  std::vector<fs::path> entries;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.path().filename().string().rfind('.', 0) != 0) entries.push_back(entry.path());
  }
  std::sort(entries.begin(), entries.end());
  return entries;
}

// {class name: its images}, in the order metric-predict enrolls them (sorted names).
std::vector<std::pair<std::string, std::vector<repmet::ImageSource>>> support_classes(const fs::path& folder) {
  if (!fs::is_directory(folder)) {
    repmet::fail("--support " + folder.string() + " is not a folder; give a folder with one subfolder of images per class");
  }
  std::vector<std::pair<std::string, std::vector<repmet::ImageSource>>> classes;
  for (const auto& sub : visible_sorted(folder)) {
    if (!fs::is_directory(sub)) continue;
    std::vector<repmet::ImageSource> images;
    for (const auto& file : visible_sorted(sub)) {
      if (fs::is_regular_file(file) && kImageSuffixes.count(lower(file.extension().string()))) images.emplace_back(file.string());
    }
    if (images.empty()) {
      repmet::fail("support class folder " + sub.string() + " holds no images (.bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp)");
    }
    classes.emplace_back(sub.filename().string(), std::move(images));
  }
  if (classes.empty()) {
    repmet::fail("--support " + folder.string() + " has no class subfolders; make one subfolder of images per class");
  }
  return classes;
}

int usage(const std::string& problem) {
  std::cerr << "error: " << problem << "\n"
            << "usage: repmet-predict ARTIFACT [--support DIR] [--gallery FILE] [--save-gallery FILE] --query IMG... "
               "[--top-k K] [--json] [--device cpu|cuda]\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string artifact, support, gallery, save_gallery, device = "cpu";
  std::vector<std::string> queries;
  int top_k = 1;
  bool as_json = false;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](const std::string& option) -> std::string {
      if (i + 1 >= args.size()) throw std::invalid_argument(option + " needs a value");
      return args[++i];
    };
    try {
      if (arg == "--support") support = value(arg);
      else if (arg == "--gallery") gallery = value(arg);
      else if (arg == "--save-gallery") save_gallery = value(arg);
      else if (arg == "--device") device = value(arg);
      else if (arg == "--json") as_json = true;
      else if (arg == "--top-k") top_k = std::stoi(value(arg));
      else if (arg == "--query") {
        queries.push_back(value(arg));
        while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) queries.push_back(args[++i]);
      } else if (arg == "-h" || arg == "--help") {
        usage("");
        return 0;
      } else if (arg.rfind("--", 0) == 0) {
        return usage("unknown option " + arg);
      } else if (artifact.empty()) {
        artifact = arg;
      } else {
        return usage("unexpected argument " + arg);
      }
    } catch (const std::exception& error) {
      return usage(error.what());
    }
  }
  if (artifact.empty()) return usage("give the ARTIFACT folder");
  if (queries.empty()) return usage("give at least one --query IMAGE");
  try {
    auto classifier = repmet::FewShotClassifier::load(artifact, device);
    if (!gallery.empty()) classifier.load_gallery(gallery);
    if (!support.empty()) {
      auto classes = support_classes(support);
      for (const auto& label : classifier.labels()) classifier.remove(label);  // the support folder defines the classes
      for (const auto& [label, images] : classes) classifier.enroll(label, images);
    }
    if (classifier.labels().empty()) {
      repmet::fail(artifact + " has no trained gallery (Prototypical Networks learn no classes); pass --support FOLDER "
                   "with one subfolder of images per class, or --gallery FILE");
    }
    if (!save_gallery.empty()) classifier.save_gallery(save_gallery);
    std::vector<repmet::ImageSource> images(queries.begin(), queries.end());
    auto predictions = classifier.classify(images, top_k);
    if (as_json) {
      nlohmann::json rows = nlohmann::json::array();
      for (std::size_t q = 0; q < queries.size(); ++q) {
        rows.push_back({{"image", queries[q]}, {"labels", predictions[q].labels}, {"posteriors", predictions[q].posteriors}});
      }
      std::cout << nlohmann::json{{"backend", "torchscript"}, {"predictions", rows}}.dump(2) << "\n";
      return 0;
    }
    std::size_t width = 5;
    for (const auto& q : queries) width = std::max(width, q.size());
    std::cout << std::left << std::setw(static_cast<int>(width)) << "image" << "  prediction (posterior)   [C++, torchscript]\n";
    for (std::size_t q = 0; q < queries.size(); ++q) {
      std::cout << std::left << std::setw(static_cast<int>(width)) << queries[q] << "  ";
      for (std::size_t j = 0; j < predictions[q].labels.size(); ++j) {
        std::cout << (j ? ", " : "") << predictions[q].labels[j] << " (" << std::fixed << std::setprecision(3)
                  << predictions[q].posteriors[j] << ")";
      }
      std::cout << "\n";
    }
  } catch (const repmet::Error& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  }
  return 0;
}

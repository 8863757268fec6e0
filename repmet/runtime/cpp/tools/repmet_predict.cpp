// repmet-predict ARTIFACT --support DIR --query IMG... [--top-k K] [--json] [--gallery FILE]
//                [--save-gallery FILE] [--device cpu|cuda] [--format auto|aoti|torchscript]
// repmet-predict ARTIFACT --detect --support COCO.json --query IMG... [--score S] [--json] ...
//
// The C++ twin of metric-predict: DIR holds one sub-folder of images per class; with --json,
// one object per query in query order with its top-k labels and posteriors, as
// metric-predict --json prints them. With --detect, the support set is a COCO JSON file with
// its images in images/ beside it (metric-predict also reads VOC folders; convert those to
// COCO JSON for C++), and each query's detections are printed.
#include <algorithm>
#include <fstream>
#include <map>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "repmet/classifier.h"
#include "repmet/detector.h"
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

// {class: its boxed images} of a COCO JSON support file, in metric-predict's order: by image,
// classes sorted by name; crowd boxes are left out, boxes are clipped to the image.
std::vector<std::pair<std::string, std::vector<repmet::BoxedImage>>> support_boxes(const fs::path& file) {
  if (!fs::is_regular_file(file)) {
    repmet::fail("--support " + file.string() + " is not a file; give a COCO JSON file (images in images/ beside it)");
  }
  nlohmann::json data;
  try {
    std::ifstream in(file);
    data = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& error) {
    repmet::fail(file.string() + " is not valid JSON (" + error.what() + "); fix the file");
  }
  for (const char* key : {"images", "annotations", "categories"}) {
    if (!data.contains(key) || !data[key].is_array()) repmet::fail(file.string() + " lacks the list '" + key + "'; fix the file");
  }
  std::map<int64_t, std::string> categories;
  for (const auto& c : data["categories"]) categories[c.at("id").get<int64_t>()] = c.at("name").get<std::string>();
  std::set<std::string> sorted_names;
  for (const auto& [id, name] : categories) sorted_names.insert(name);
  std::map<int64_t, std::vector<nlohmann::json>> by_image;
  for (const auto& a : data["annotations"]) by_image[a.at("image_id").get<int64_t>()].push_back(a);
  std::vector<std::pair<std::string, std::vector<repmet::BoxedImage>>> classes;
  auto entry = [&](const std::string& name) -> std::vector<repmet::BoxedImage>& {
    for (auto& [label, examples] : classes) {
      if (label == name) return examples;
    }
    return classes.emplace_back(name, std::vector<repmet::BoxedImage>{}).second;
  };
  for (const auto& record : data["images"]) {
    fs::path path = file.parent_path() / "images" / record.at("file_name").get<std::string>();
    if (!fs::is_regular_file(path)) {
      repmet::fail(file.string() + " names " + path.string() + ", which does not exist; add the image or remove the entry");
    }
    const float width = record.at("width").get<float>(), height = record.at("height").get<float>();
    std::map<std::string, std::vector<repmet::Box>> boxes;
    for (const auto& a : by_image[record.at("id").get<int64_t>()]) {
      if (a.value("iscrowd", 0)) continue;
      auto bbox = a.at("bbox").get<std::vector<float>>();
      if (bbox.size() != 4) repmet::fail(file.string() + " annotation id " + a.value("id", nlohmann::json()).dump() + ": 'bbox' must be [x, y, width, height]; fix the file");
      repmet::Box box{std::clamp(bbox[0], 0.0f, width), std::clamp(bbox[1], 0.0f, height),
                      std::clamp(bbox[0] + bbox[2], 0.0f, width), std::clamp(bbox[1] + bbox[3], 0.0f, height)};
      if (box[2] > box[0] && box[3] > box[1]) boxes[categories.at(a.at("category_id").get<int64_t>())].push_back(box);
    }
    for (const auto& name : sorted_names) {
      if (boxes.count(name)) entry(name).push_back({repmet::ImageSource(path.string()), boxes[name]});
    }
  }
  if (classes.empty()) repmet::fail("--support " + file.string() + " has no boxes to enroll");
  return classes;
}

int detect(const std::string& artifact, const std::string& support, const std::string& gallery,
           const std::string& save_gallery, const std::vector<std::string>& queries, const std::string& device,
           const std::string& format, float score, bool as_json) {
  auto detector = repmet::FewShotDetector::load(artifact, device, format);
  if (!gallery.empty()) detector.load_gallery(gallery);
  if (!support.empty()) {
    for (const auto& [label, examples] : support_boxes(support)) detector.enroll(label, examples);
  }
  if (!save_gallery.empty()) detector.save_gallery(save_gallery);
  std::vector<repmet::ImageSource> images(queries.begin(), queries.end());
  auto found = detector.detect(images, score);
  if (as_json) {
    nlohmann::json rows = nlohmann::json::array();
    for (std::size_t q = 0; q < queries.size(); ++q) {
      nlohmann::json detections = nlohmann::json::array();
      for (const auto& d : found[q]) detections.push_back({{"box", d.box}, {"label", d.label}, {"score", d.score}});
      rows.push_back({{"image", queries[q]}, {"detections", detections}});
    }
    std::cout << nlohmann::json{{"backend", detector.format()}, {"classes", detector.labels()}, {"predictions", rows}}.dump(2)
              << "\n";
    return 0;
  }
  for (std::size_t q = 0; q < queries.size(); ++q) {
    std::cout << queries[q] << ": " << found[q].size() << " detections with score >= " << score << "\n";
    for (const auto& d : found[q]) {
      std::cout << "  " << d.label << " " << std::fixed << std::setprecision(3) << d.score << " [" << std::setprecision(1)
                << d.box[0] << ", " << d.box[1] << ", " << d.box[2] << ", " << d.box[3] << "]\n";
    }
  }
  return 0;
}

int usage(const std::string& problem) {
  std::cerr << "error: " << problem << "\n"
            << "usage: repmet-predict ARTIFACT [--support DIR] [--gallery FILE] [--save-gallery FILE] --query IMG... "
               "[--top-k K] [--json] [--device cpu|cuda] [--format auto|aoti|torchscript]\n"
            << "       repmet-predict ARTIFACT --detect --support COCO.json --query IMG... [--score S] [--json] ...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string artifact, support, gallery, save_gallery, device = "cpu", format = "auto";
  std::vector<std::string> queries;
  int top_k = 1;
  float score = 0.3f;  // P(object) x P(class): README, "Few-shot object detection"
  bool as_json = false, detecting = false;
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
      else if (arg == "--format") format = value(arg);
      else if (arg == "--json") as_json = true;
      else if (arg == "--detect") detecting = true;
      else if (arg == "--score") score = std::stof(value(arg));
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
    if (detecting) return detect(artifact, support, gallery, save_gallery, queries, device, format, score, as_json);
    auto classifier = repmet::FewShotClassifier::load(artifact, device, format);
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
      std::cout << nlohmann::json{{"backend", classifier.format()}, {"predictions", rows}}.dump(2) << "\n";
      return 0;
    }
    std::size_t width = 5;
    for (const auto& q : queries) width = std::max(width, q.size());
    std::cout << std::left << std::setw(static_cast<int>(width)) << "image" << "  prediction (posterior)   [C++, " << classifier.format() << "]\n";
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

// repmet-predict ARTIFACT --support DIR --query IMG... [--top-k K] [--json] [--gallery FILE]
//                [--save-gallery FILE] [--device cpu|cuda] [--format auto|int8|onnx|aoti|torchscript]
// repmet-predict ARTIFACT --detect --support COCO.json --query IMG... [--score S] [--json] ...
//
// The C++ twin of metric-predict: DIR holds one sub-folder of images per class; with --json,
// one object per query in query order with its top-k labels and posteriors, as
// metric-predict --json prints them. With --detect, the support set is a COCO JSON file with
// its images in images/ beside it (metric-predict also reads VOC folders; convert those to
// COCO JSON for C++), and each query's detections are printed.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <set>

#include <nlohmann/json.hpp>

#include "repmet/artifact.h"
#include "repmet/classifier.h"
#include "repmet/detector.h"
#include "repmet/errors.h"

namespace fs = std::filesystem;

namespace {

const std::set<std::string> kImageSuffixes = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"};

// JSON for stdout: a label or path that is not UTF-8 is printed with U+FFFD, never an exception
std::string printed(const nlohmann::json& value) { return value.dump(2, ' ', false, nlohmann::json::error_handler_t::replace); }

// --top-k: 1, 2, ... (more than the classes is the classes)
int parse_top_k(const std::string& text) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos || std::stoi(text) < 1) {
    repmet::fail("--top-k must be a positive integer, got '" + text.substr(0, 40) + "'");
  }
  return std::stoi(text);  // 1 to 999999999: digits checked above
}

// --score: a probability (P(object) x P(class)); NaN would keep every detection
float parse_score(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const double value = text.empty() ? NAN : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || errno != 0 || !(value >= 0.0 && value <= 1.0)) {
    repmet::fail("--score must be a number from 0 to 1, got '" + text.substr(0, 40) + "'");
  }
  return static_cast<float>(value);
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::vector<fs::path> visible_sorted(const fs::path& folder) {
  std::vector<fs::path> entries;
  std::error_code error;
  for (fs::directory_iterator it(folder, error), end; !error && it != end; it.increment(error)) {
    if (it->path().filename().string().rfind('.', 0) != 0) entries.push_back(it->path());
  }
  if (error) repmet::fail("cannot list " + folder.string() + " (" + error.message() + ")");
  std::sort(entries.begin(), entries.end());
  return entries;
}

// {class name: its images}, in the order metric-predict enrolls them (sorted names).
std::vector<std::pair<std::string, std::vector<repmet::ImageSource>>> support_classes(const fs::path& folder) {
  std::error_code no_throw;
  if (!fs::is_directory(folder, no_throw)) {
    repmet::fail("--support " + folder.string() + " is not a folder; give a folder with one subfolder of images per class");
  }
  std::vector<std::pair<std::string, std::vector<repmet::ImageSource>>> classes;
  for (const auto& sub : visible_sorted(folder)) {
    if (!fs::is_directory(sub, no_throw)) continue;
    std::vector<repmet::ImageSource> images;
    for (const auto& file : visible_sorted(sub)) {
      if (fs::is_regular_file(file, no_throw) && kImageSuffixes.count(lower(file.extension().string()))) images.emplace_back(file.string());
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

// A COCO support file's records read with sentences: a missing key, a wrong type or an unknown
// id names the file, the record and the key (never a nlohmann or std::map exception).
class CocoReader {
 public:
  explicit CocoReader(fs::path file) : file_(std::move(file)) {}

  [[noreturn]] void invalid(const std::string& where, const std::string& why) const {
    repmet::fail(file_.string() + ": " + where + " " + why + "; fix the file");
  }
  const nlohmann::json& key(const nlohmann::json& record, const std::string& name, const std::string& where) const {
    if (!record.is_object()) invalid(where, "is not an object");
    auto found = record.find(name);
    if (found == record.end()) invalid(where, "lacks '" + name + "'");
    return *found;
  }
  int64_t id(const nlohmann::json& record, const std::string& name, const std::string& where) const {
    const auto& value = key(record, name, where);
    if (!value.is_number_integer()) invalid(where, "has '" + name + "' = " + shown(value) + ", not an integer");
    return value.get<int64_t>();
  }
  std::string text(const nlohmann::json& record, const std::string& name, const std::string& where) const {
    const auto& value = key(record, name, where);
    if (!value.is_string()) invalid(where, "has '" + name + "' = " + shown(value) + ", not a string");
    return value.get<std::string>();
  }
  // a number that is finite as a float32 (1e308 is not)
  float number(const nlohmann::json& value, const std::string& what, const std::string& where) const {
    if (!value.is_number() || !std::isfinite(static_cast<float>(value.get<double>()))) {
      invalid(where, "has " + what + " = " + shown(value) + ", not a finite number");
    }
    return static_cast<float>(value.get<double>());
  }
  float positive(const nlohmann::json& record, const std::string& name, const std::string& where) const {
    float value = number(key(record, name, where), "'" + name + "'", where);
    if (!(value > 0)) invalid(where, "has '" + name + "' = " + shown(record[name]) + ", not above 0");
    return value;
  }
  repmet::Box box(const nlohmann::json& annotation, const std::string& where) const {
    const auto& bbox = key(annotation, "bbox", where);
    if (!bbox.is_array() || bbox.size() != 4) invalid(where, "has 'bbox' = " + shown(bbox) + ", not [x, y, width, height]");
    float x = number(bbox[0], "'bbox'", where), y = number(bbox[1], "'bbox'", where);
    float w = number(bbox[2], "'bbox'", where), h = number(bbox[3], "'bbox'", where);
    if (!std::isfinite(x + w) || !std::isfinite(y + h)) invalid(where, "has 'bbox' = " + shown(bbox) + ", beyond any image");
    return {x, y, x + w, y + h};
  }
  bool crowd(const nlohmann::json& annotation, const std::string& where) const {
    auto found = annotation.find("iscrowd");
    if (found == annotation.end()) return false;
    if (found->is_boolean()) return found->get<bool>();
    if (!found->is_number_integer() || found->get<int64_t>() < 0 || found->get<int64_t>() > 1) {
      invalid(where, "has 'iscrowd' = " + shown(*found) + ", not 0 or 1");
    }
    return found->get<int64_t>() == 1;
  }

 private:
  static std::string shown(const nlohmann::json& value) {
    std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return text.size() <= 60 ? text : text.substr(0, 57) + "...";
  }
  fs::path file_;
};

// folder / name, which must stay inside folder (no absolute name, no "..", no link out of it): an
// annotation file from someone else must not make the program read elsewhere (as metric-predict).
fs::path confined(const fs::path& folder, const std::string& name, const std::string& where, const fs::path& file) {
  const fs::path path = folder / name;
  std::error_code no_throw;
  const fs::path inside = fs::weakly_canonical(folder, no_throw);
  const fs::path resolved = no_throw ? fs::path() : fs::weakly_canonical(path, no_throw);
  bool within = !no_throw && !fs::path(name).is_absolute() && !name.empty();
  if (within) {
    auto [end, unused] = std::mismatch(inside.begin(), inside.end(), resolved.begin(), resolved.end());
    within = end == inside.end() && resolved != inside;
  }
  if (!within) {
    repmet::fail(file.string() + ": " + where + ": file_name '" + name + "' points outside the image folder " +
                 folder.string() + "; image files must lie inside it (copy them there)");
  }
  return path;
}

// {class: its boxed images} of a COCO JSON support file, in metric-predict's order: by image,
// classes sorted by name; crowd boxes are left out, boxes are clipped to the image.
std::vector<std::pair<std::string, std::vector<repmet::BoxedImage>>> support_boxes(const fs::path& file) {
  std::error_code no_throw;
  if (!fs::is_regular_file(file, no_throw)) {
    repmet::fail("--support " + file.string() + " is not a file; give a COCO JSON file (images in images/ beside it)");
  }
  const nlohmann::json data = repmet::read_json_file(file.string(), "fix the file");
  const CocoReader coco(file);
  if (!data.is_object()) coco.invalid("the top level", "is not an object");
  for (const char* list : {"images", "annotations", "categories"}) {
    if (!data.contains(list) || !data[list].is_array()) repmet::fail(file.string() + " lacks the list '" + list + "'; fix the file");
  }
  std::map<int64_t, std::string> categories;
  for (std::size_t i = 0; i < data["categories"].size(); ++i) {
    const std::string where = "categories[" + std::to_string(i) + "]";
    const auto& c = data["categories"][i];
    const int64_t id = coco.id(c, "id", where);
    if (!categories.emplace(id, coco.text(c, "name", where)).second) coco.invalid(where, "repeats the id " + std::to_string(id));
  }
  std::set<std::string> sorted_names;
  for (const auto& [id, name] : categories) sorted_names.insert(name);
  std::map<int64_t, std::vector<std::pair<std::string, repmet::Box>>> by_image;  // image id: (category, box)
  for (std::size_t i = 0; i < data["annotations"].size(); ++i) {
    const auto& a = data["annotations"][i];
    const std::string where = "annotations[" + std::to_string(i) + "]";
    const int64_t image = coco.id(a, "image_id", where), category = coco.id(a, "category_id", where);
    auto name = categories.find(category);
    if (name == categories.end()) coco.invalid(where, "has 'category_id' = " + std::to_string(category) + ", which no category has");
    repmet::Box box = coco.box(a, where);
    if (!coco.crowd(a, where)) by_image[image].emplace_back(name->second, box);
  }
  std::vector<std::pair<std::string, std::vector<repmet::BoxedImage>>> classes;
  auto entry = [&](const std::string& name) -> std::vector<repmet::BoxedImage>& {
    for (auto& [label, examples] : classes) {
      if (label == name) return examples;
    }
    return classes.emplace_back(name, std::vector<repmet::BoxedImage>{}).second;
  };
  std::set<int64_t> seen;
  for (std::size_t i = 0; i < data["images"].size(); ++i) {
    const auto& record = data["images"][i];
    const std::string where = "images[" + std::to_string(i) + "]";
    const int64_t id = coco.id(record, "id", where);
    if (!seen.insert(id).second) coco.invalid(where, "repeats the image id " + std::to_string(id));
    fs::path path = confined(file.parent_path() / "images", coco.text(record, "file_name", where), where, file);
    const float width = coco.positive(record, "width", where), height = coco.positive(record, "height", where);
    if (!fs::is_regular_file(path, no_throw)) {
      repmet::fail(file.string() + " names " + path.string() + ", which does not exist; add the image or remove the entry");
    }
    std::map<std::string, std::vector<repmet::Box>> boxes;
    for (const auto& [name, b] : by_image[id]) {
      repmet::Box box{std::clamp(b[0], 0.0f, width), std::clamp(b[1], 0.0f, height), std::clamp(b[2], 0.0f, width),
                      std::clamp(b[3], 0.0f, height)};
      if (box[2] > box[0] && box[3] > box[1]) boxes[name].push_back(box);
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
  // the support file first: a mistake in it is reported before the graphs load
  std::vector<std::pair<std::string, std::vector<repmet::BoxedImage>>> classes;
  if (!support.empty()) classes = support_boxes(support);
  auto detector = repmet::FewShotDetector::load(artifact, device, format);
  if (!gallery.empty()) detector.load_gallery(gallery);
  for (const auto& [label, examples] : classes) detector.enroll(label, examples);
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
    std::cout << printed(nlohmann::json{{"backend", detector.format()}, {"classes", detector.labels()}, {"predictions", rows}})
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
               "[--top-k K] [--json] [--device cpu|cuda] [--format auto|int8|onnx|aoti|torchscript]\n"
            << "       repmet-predict ARTIFACT --detect --support COCO.json --query IMG... [--score S] [--json] ...\n";
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string artifact, support, gallery, save_gallery, device = "cpu", format = "auto";
  std::vector<std::string> queries;
  int top_k = 1;
  float score = 0.2f;  // P(object) x P(class): README, "Few-shot object detection"
  bool as_json = false, detecting = false;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](const std::string& option) -> std::string {
      if (i + 1 >= args.size()) repmet::fail(option + " needs a value");
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
      else if (arg == "--score") score = parse_score(value(arg));
      else if (arg == "--top-k") top_k = parse_top_k(value(arg));
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
      std::cout << printed(nlohmann::json{{"backend", classifier.format()}, {"predictions", rows}}) << "\n";
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
  } catch (const std::exception& error) {  // a safety net: the library throws only repmet::Error
    std::cerr << "error: " << repmet::brief(error.what()) << "\n";
    return 1;
  } catch (...) {
    std::cerr << "error: an unknown error\n";
    return 1;
  }
  return 0;
}

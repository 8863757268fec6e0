#include "repmet/errors.h"

#include <algorithm>

namespace repmet {

void fail(const std::string& message) { throw Error(message); }

std::string brief(const std::string& what) {
  // TorchScript: "The following operation failed ...\nTraceback ...\nRuntimeError: <the reason>\n"
  std::string text = what;
  auto reason = text.rfind("Error: ");
  if (text.find('\n') != std::string::npos && reason != std::string::npos) {
    text = text.substr(reason + 7);
  }
  text = text.substr(0, text.find('\n'));  // c10::Error: the message, then "Exception raised from ..."
  constexpr std::size_t kMost = 300;
  if (text.size() > kMost) text = text.substr(0, kMost - 3) + "...";
  std::replace_if(text.begin(), text.end(), [](unsigned char c) { return c < 0x20; }, ' ');
  return text.empty() ? "no message" : text;
}

}  // namespace repmet

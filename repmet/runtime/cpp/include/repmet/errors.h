// Every failure the runtime reports: a sentence that names the file, key or image and says
// what to do, as the Python runtime's UserError. A call that throws changes nothing.
#pragma once
#include <stdexcept>
#include <string>

namespace repmet {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& message);

}  // namespace repmet

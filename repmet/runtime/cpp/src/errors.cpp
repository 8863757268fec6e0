#include "repmet/errors.h"

namespace repmet {

void fail(const std::string& message) { throw Error(message); }

}  // namespace repmet

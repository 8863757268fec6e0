// Every failure the runtime reports: a sentence that names the file, key or image and says
// what to do, as the Python runtime's UserError. A call that throws changes nothing.
//
// Nothing else crosses the public API: a function that calls code which may throw something
// else (libtorch, the standard library) runs it in translate_errors, which turns any other
// exception into an Error with a sentence; so a host application catches one type and is
// never aborted by an exception it did not know of.
#pragma once
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

namespace repmet {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void fail(const std::string& message);

// The line of an exception's text that says what went wrong (libtorch adds tracebacks), shortened.
std::string brief(const std::string& what);

// ``work()``; any exception but an Error leaves as the Error "<context> (<what went wrong>)<remedy>".
template <class Work>
auto translate_errors(const std::string& context, const std::string& remedy, Work&& work) -> decltype(work()) {
  try {
    return work();
  } catch (const Error&) {
    throw;
  } catch (const std::bad_alloc&) {
    fail(context + " (out of memory)" + remedy);
  } catch (const std::exception& error) {
    fail(context + " (" + brief(error.what()) + ")" + remedy);
  } catch (...) {
    fail(context + " (an unknown error)" + remedy);
  }
}

}  // namespace repmet

#include "app/run_guarded.h"

#include "store/db.h"

namespace backstop::app {

int run_guarded(const std::function<runtime::ExitCode()>& body) {
  return runtime::run_guarded([&] { return store::run_with_database(body); });
}

}  // namespace backstop::app

#include "store/unit_of_work.h"

namespace backstop::store {

UnitOfWork::UnitOfWork(pqxx::connection& connection, Commit commit) : work_(connection) {
  if (commit == Commit::kDeferred) work_.exec("SET LOCAL synchronous_commit = off");
}

}  // namespace backstop::store

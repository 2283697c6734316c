// What `migrate verify` expects to find after each applied migration: tables,
// columns, indexes (and that they are VALID), constraints and triggers.
#pragma once

#include <pqxx/pqxx>
#include <string>
#include <vector>

namespace backstop::store {

void check_schema(pqxx::transaction_base& tx, const std::vector<int>& applied_versions,
                  std::vector<std::string>& problems, std::vector<std::string>& warnings);

}  // namespace backstop::store

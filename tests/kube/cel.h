// A small, honest subset of CEL (the Common Expression Language) for the
// x-kubernetes-validations rules of CustomResourceDefinitions: enough for the
// rules Backstop's CRD declares, and a loud refusal (CompileError) for anything
// outside it, so that a CRD whose rules this server cannot evaluate is refused
// instead of its rules being skipped.
//
// The subset: literals (int, double, string, true, false, null, lists), the
// variables self and oldSelf, field selection (self.a.b; a missing field is an
// evaluation error "no such key", as in CEL), indexing (x[0], m["k"]), has()
// on a field selection, size(x) and x.size(), x.startsWith(s), x.endsWith(s),
// x.contains(s), ! and unary -, + - * / % on ints (+ also on strings and
// lists), == != < <= > >= on numbers, strings and booleans (== and != on
// anything), `in` on lists and maps, && and || with CEL's commutative error
// absorption (false && error is false), and the ternary ?:. Not supported
// (refused at compile time): macros (all, exists, map, filter), other
// functions, type conversions, uint and bytes literals, comprehensions.
//
// Compilation also checks each field selection rooted at self against the
// schema the rule sits on (check_fields), as CEL's type checker does.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

namespace backstop::testing::cel {

struct CompileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Node;

class Program {
 public:
  // Throws CompileError for text outside the subset.
  static Program compile(const std::string& rule);

  // Whether the rule reads oldSelf (a transition rule: evaluated on update only).
  [[nodiscard]] bool uses_old_self() const { return uses_old_self_; }

  // The error CEL's type checker would report for a field selection the schema
  // `self_schema` (the node the rule sits on) does not declare, "" when none.
  [[nodiscard]] std::string check_fields(const nlohmann::json& self_schema) const;

  struct Result {
    bool ok = false;     // evaluated to a boolean
    bool value = false;  // that boolean
    std::string error;   // when !ok: why (no such key, no matching overload, ...)
  };
  [[nodiscard]] Result evaluate(const nlohmann::json& self, const nlohmann::json* old_self) const;

 private:
  std::shared_ptr<const Node> root_;
  bool uses_old_self_ = false;
};

}  // namespace backstop::testing::cel

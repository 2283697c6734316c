#include "cel.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <utility>

namespace backstop::testing::cel {

using nlohmann::json;

enum class Kind { Literal, Ident, Select, Index, Has, Call, Unary, Binary, Ternary, List };

struct Node {
  Kind kind = Kind::Literal;
  json literal;      // Literal
  std::string name;  // Ident, Select (the field), Call (the function), Unary/Binary (the operator)
  std::vector<std::shared_ptr<const Node>> args;  // operands; a method call's receiver first
};

namespace {

using NodePtr = std::shared_ptr<const Node>;

NodePtr make(Kind kind, std::string name, std::vector<NodePtr> args, json literal = json()) {
  auto n = std::make_shared<Node>();
  n->kind = kind;
  n->name = std::move(name);
  n->args = std::move(args);
  n->literal = std::move(literal);
  return n;
}

// ---------------------------------------------------------------------------
// Tokens and the recursive-descent parser.

struct Token {
  enum class Type { Ident, Int, Double, String, Op, End } type = Type::End;
  std::string text;
  json value;
  std::size_t at = 0;
};

std::vector<Token> tokenize(const std::string& s) {
  std::vector<Token> out;
  std::size_t i = 0;
  auto fail = [&](const std::string& why) -> void {
    throw CompileError("<input>:1:" + std::to_string(i + 1) + ": " + why);
  };
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      ++i;
      continue;
    }
    Token t;
    t.at = i;
    if (std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_') {
      std::size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) != 0 || s[j] == '_')) ++j;
      t.type = Token::Type::Ident;
      t.text = s.substr(i, j - i);
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c)) != 0) {
      std::size_t j = i;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])) != 0) ++j;
      bool is_double = false;
      if (j + 1 < s.size() && s[j] == '.' && std::isdigit(static_cast<unsigned char>(s[j + 1])) != 0) {
        is_double = true;
        ++j;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])) != 0) ++j;
      }
      if (j < s.size() && (s[j] == 'u' || s[j] == 'U' || s[j] == 'x' || s[j] == 'e' || s[j] == 'E')) {
        i = j;
        fail("unsupported numeric literal (this test server's CEL subset)");
      }
      t.text = s.substr(i, j - i);
      t.type = is_double ? Token::Type::Double : Token::Type::Int;
      try {
        t.value = is_double ? json(std::stod(t.text)) : json(std::stoll(t.text));
      } catch (const std::out_of_range&) {
        fail("numeric literal out of range");
      }
      i = j;
    } else if (c == '"' || c == '\'') {
      if (s.compare(i, 3, std::string(3, c)) == 0) fail("triple-quoted strings are not supported");
      std::string value;
      std::size_t j = i + 1;
      for (; j < s.size() && s[j] != c; ++j) {
        if (s[j] != '\\') {
          value += s[j];
          continue;
        }
        if (++j >= s.size()) break;
        switch (s[j]) {
          case 'n':
            value += '\n';
            break;
          case 't':
            value += '\t';
            break;
          case '\\':
          case '"':
          case '\'':
            value += s[j];
            break;
          default:
            i = j;
            fail("unsupported escape sequence");
        }
      }
      if (j >= s.size()) fail("unterminated string literal");
      t.type = Token::Type::String;
      t.value = value;
      i = j + 1;
    } else {
      static const char* const kOps[] = {"&&", "||", "==", "!=", "<=", ">=", "!", "<", ">", "?", ":", "(",
                                         ")",  "[",  "]",  ",",  ".",  "+",  "-", "*", "/", "%", "{", "}"};
      bool found = false;
      for (const char* op : kOps) {
        const std::string o = op;
        if (s.compare(i, o.size(), o) == 0) {
          t.type = Token::Type::Op;
          t.text = o;
          i += o.size();
          found = true;
          break;
        }
      }
      if (!found) fail(std::string("Syntax error: token recognition error at: '") + c + "'");
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.at = s.size();
  out.push_back(end);
  return out;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : tokens_(std::move(tokens)) {}

  NodePtr parse() {
    NodePtr e = ternary();
    if (peek().type != Token::Type::End) fail("Syntax error: extraneous input '" + peek().text + "'");
    return e;
  }

  bool uses_old_self = false;

 private:
  const Token& peek() const { return tokens_[pos_]; }
  bool is_op(const char* op) const { return peek().type == Token::Type::Op && peek().text == op; }
  bool take(const char* op) {
    if (!is_op(op)) return false;
    ++pos_;
    return true;
  }
  void expect(const char* op) {
    if (!take(op)) fail(std::string("Syntax error: missing '") + op + "'");
  }
  [[noreturn]] void fail(const std::string& why) const {
    throw CompileError("<input>:1:" + std::to_string(peek().at + 1) + ": " + why);
  }
  [[noreturn]] void fail_at(std::size_t at, const std::string& why) const {
    throw CompileError("<input>:1:" + std::to_string(at + 1) + ": " + why);
  }
  [[noreturn]] void unsupported(const Token& name, const std::string& what) const {
    fail_at(name.at, what + " is not supported by this test server's CEL subset");
  }

  NodePtr ternary() {
    NodePtr c = logical_or();
    if (!take("?")) return c;
    NodePtr a = logical_or();
    expect(":");
    NodePtr b = ternary();
    return make(Kind::Ternary, "?:", {c, a, b});
  }
  NodePtr logical_or() {
    NodePtr l = logical_and();
    while (take("||")) l = make(Kind::Binary, "||", {l, logical_and()});
    return l;
  }
  NodePtr logical_and() {
    NodePtr l = relation();
    while (take("&&")) l = make(Kind::Binary, "&&", {l, relation()});
    return l;
  }
  NodePtr relation() {
    NodePtr l = additive();
    for (;;) {
      std::string op;
      for (const char* o : {"==", "!=", "<=", ">=", "<", ">"}) {
        if (is_op(o)) op = o;
      }
      if (op.empty() && peek().type == Token::Type::Ident && peek().text == "in") op = "in";
      if (op.empty()) return l;
      ++pos_;
      l = make(Kind::Binary, op, {l, additive()});
    }
  }
  NodePtr additive() {
    NodePtr l = multiplicative();
    for (;;) {
      if (take("+")) {
        l = make(Kind::Binary, "+", {l, multiplicative()});
      } else if (take("-")) {
        l = make(Kind::Binary, "-", {l, multiplicative()});
      } else {
        return l;
      }
    }
  }
  NodePtr multiplicative() {
    NodePtr l = unary();
    for (;;) {
      std::string op;
      for (const char* o : {"*", "/", "%"}) {
        if (is_op(o)) op = o;
      }
      if (op.empty()) return l;
      ++pos_;
      l = make(Kind::Binary, op, {l, unary()});
    }
  }
  NodePtr unary() {
    if (take("!")) return make(Kind::Unary, "!", {unary()});
    if (take("-")) return make(Kind::Unary, "-", {unary()});
    return member();
  }
  NodePtr member() {
    NodePtr e = primary();
    for (;;) {
      if (take(".")) {
        if (peek().type != Token::Type::Ident) fail("Syntax error: missing IDENTIFIER");
        const Token& name = tokens_[pos_++];
        const std::string field = name.text;
        if (take("(")) {
          static const std::vector<std::string> kMethods = {"size", "startsWith", "endsWith", "contains"};
          if (std::find(kMethods.begin(), kMethods.end(), field) == kMethods.end()) {
            unsupported(name, "the function or macro '" + field + "'");
          }
          std::vector<NodePtr> args = {e};
          arguments(args);
          e = make(Kind::Call, field, std::move(args));
        } else {
          e = make(Kind::Select, field, {e});
        }
      } else if (take("[")) {
        NodePtr index = ternary();
        expect("]");
        e = make(Kind::Index, "[]", {e, index});
      } else {
        return e;
      }
    }
  }
  void arguments(std::vector<NodePtr>& args) {
    if (take(")")) return;
    do {
      args.push_back(ternary());
    } while (take(","));
    expect(")");
  }
  NodePtr primary() {
    const Token t = peek();
    switch (t.type) {
      case Token::Type::Int:
      case Token::Type::Double:
      case Token::Type::String:
        ++pos_;
        return make(Kind::Literal, "", {}, t.value);
      case Token::Type::Ident:
        break;
      case Token::Type::Op:
        if (take("(")) {
          NodePtr e = ternary();
          expect(")");
          return e;
        }
        if (take("[")) {
          std::vector<NodePtr> elements;
          if (!take("]")) {
            do {
              elements.push_back(ternary());
            } while (take(","));
            expect("]");
          }
          return make(Kind::List, "[]", std::move(elements));
        }
        if (is_op("{")) unsupported(t, "a map literal");
        fail("Syntax error: mismatched input '" + t.text + "'");
      case Token::Type::End:
        fail("Syntax error: mismatched input '<EOF>'");
    }
    ++pos_;
    if (t.text == "true" || t.text == "false") return make(Kind::Literal, "", {}, t.text == "true");
    if (t.text == "null") return make(Kind::Literal, "", {}, json());
    if (take("(")) {
      if (t.text == "has") {
        NodePtr arg = ternary();
        expect(")");
        if (arg->kind != Kind::Select) fail("invalid argument to has() macro");
        return make(Kind::Has, "has", {arg});
      }
      if (t.text == "size") {
        std::vector<NodePtr> args;
        arguments(args);
        if (args.size() != 1) fail("found no matching overload for 'size'");
        return make(Kind::Call, "size", std::move(args));
      }
      unsupported(t, "the function or macro '" + t.text + "'");
    }
    if (t.text == "self") return make(Kind::Ident, "self", {});
    if (t.text == "oldSelf") {
      uses_old_self = true;
      return make(Kind::Ident, "oldSelf", {});
    }
    --pos_;
    fail("undeclared reference to '" + t.text + "' (in container '')");
  }

  std::vector<Token> tokens_;
  std::size_t pos_ = 0;
};

// ---------------------------------------------------------------------------
// Evaluation: a value or an error (CEL's error values, absorbed by && and ||).

struct Value {
  std::optional<json> v;
  std::string error;
  static Value of(json j) { return {std::move(j), ""}; }
  static Value fail(std::string why) { return {std::nullopt, std::move(why)}; }
  [[nodiscard]] bool is_bool() const { return v && v->is_boolean(); }
};

std::string type_of(const json& v) {
  if (v.is_null()) return "null_type";
  if (v.is_boolean()) return "bool";
  if (v.is_number_integer()) return "int";
  if (v.is_number()) return "double";
  if (v.is_string()) return "string";
  if (v.is_array()) return "list";
  return "map";
}

Value no_overload(const std::string& op, const json& a, const json* b = nullptr) {
  return Value::fail("no matching overload for '" + op + "' applied to '(" + type_of(a) +
                     (b != nullptr ? ", " + type_of(*b) : "") + ")'");
}

std::size_t code_points(const std::string& s) {
  std::size_t n = 0;
  for (const char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

struct Env {
  const json& self;
  const json* old_self;
};

Value eval(const Node& n, const Env& env);

Value compare(const std::string& op, const json& a, const json& b) {
  if (op == "==") return Value::of(a == b);
  if (op == "!=") return Value::of(a != b);
  int order = 0;
  if (a.is_number() && b.is_number()) {
    if (a.is_number_integer() && b.is_number_integer()) {
      const auto x = a.get<std::int64_t>();
      const auto y = b.get<std::int64_t>();
      order = x < y ? -1 : (x > y ? 1 : 0);
    } else {
      const double x = a.get<double>();
      const double y = b.get<double>();
      order = x < y ? -1 : (x > y ? 1 : 0);
    }
  } else if (a.is_string() && b.is_string()) {
    const int c = a.get<std::string>().compare(b.get<std::string>());
    order = c < 0 ? -1 : (c > 0 ? 1 : 0);
  } else if (a.is_boolean() && b.is_boolean()) {
    order = static_cast<int>(a.get<bool>()) - static_cast<int>(b.get<bool>());
  } else {
    return no_overload(op, a, &b);
  }
  if (op == "<") return Value::of(order < 0);
  if (op == "<=") return Value::of(order <= 0);
  if (op == ">") return Value::of(order > 0);
  return Value::of(order >= 0);
}

Value arithmetic(const std::string& op, const json& a, const json& b) {
  if (op == "+" && a.is_string() && b.is_string()) return Value::of(a.get<std::string>() + b.get<std::string>());
  if (op == "+" && a.is_array() && b.is_array()) {
    json out = a;
    for (const json& e : b) out.push_back(e);
    return Value::of(out);
  }
  if (a.is_number_integer() && b.is_number_integer()) {
    const auto x = a.get<std::int64_t>();
    const auto y = b.get<std::int64_t>();
    std::int64_t r = 0;
    bool overflow = false;
    if (op == "+") overflow = __builtin_add_overflow(x, y, &r);
    if (op == "-") overflow = __builtin_sub_overflow(x, y, &r);
    if (op == "*") overflow = __builtin_mul_overflow(x, y, &r);
    if (op == "/" || op == "%") {
      if (y == 0) return Value::fail(op == "/" ? "division by zero" : "modulus by zero");
      if (x == INT64_MIN && y == -1) return Value::fail("integer overflow");
      r = op == "/" ? x / y : x % y;
    }
    if (overflow) return Value::fail("integer overflow");
    return Value::of(r);
  }
  if (a.is_number_float() && b.is_number_float() && op != "%") {
    const double x = a.get<double>();
    const double y = b.get<double>();
    return Value::of(op == "+" ? x + y : op == "-" ? x - y : op == "*" ? x * y : x / y);
  }
  return no_overload(op, a, &b);
}

Value call(const Node& n, const Env& env) {
  std::vector<json> args;
  for (const NodePtr& a : n.args) {
    Value v = eval(*a, env);
    if (!v.v) return v;
    args.push_back(std::move(*v.v));
  }
  const json& target = args[0];
  if (n.name == "size") {
    if (args.size() != 1) return Value::fail("found no matching overload for 'size'");
    if (target.is_string()) return Value::of(static_cast<std::int64_t>(code_points(target.get<std::string>())));
    if (target.is_array() || target.is_object()) return Value::of(static_cast<std::int64_t>(target.size()));
    return no_overload("size", target);
  }
  if (args.size() != 2 || !target.is_string() || !args[1].is_string()) return no_overload(n.name, target);
  const std::string s = target.get<std::string>();
  const std::string x = args[1].get<std::string>();
  if (n.name == "startsWith") return Value::of(s.rfind(x, 0) == 0);
  if (n.name == "endsWith") return Value::of(s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0);
  return Value::of(s.find(x) != std::string::npos);  // contains
}

Value eval(const Node& n, const Env& env) {
  switch (n.kind) {
    case Kind::Literal:
      return Value::of(n.literal);
    case Kind::Ident:
      if (n.name == "self") return Value::of(env.self);
      if (env.old_self == nullptr) return Value::fail("no such attribute: oldSelf");
      return Value::of(*env.old_self);
    case Kind::List: {
      json out = json::array();
      for (const NodePtr& e : n.args) {
        Value v = eval(*e, env);
        if (!v.v) return v;
        out.push_back(std::move(*v.v));
      }
      return Value::of(out);
    }
    case Kind::Select:
    case Kind::Has: {
      const Node& select = n.kind == Kind::Has ? *n.args[0] : n;
      Value operand = eval(*select.args[0], env);
      if (!operand.v) return operand;
      if (!operand.v->is_object())
        return Value::fail("type '" + type_of(*operand.v) + "' does not support field selection");
      const bool present = operand.v->contains(select.name);
      if (n.kind == Kind::Has) return Value::of(present);
      if (!present) return Value::fail("no such key: " + select.name);
      return Value::of(operand.v->at(select.name));
    }
    case Kind::Index: {
      Value operand = eval(*n.args[0], env);
      if (!operand.v) return operand;
      Value index = eval(*n.args[1], env);
      if (!index.v) return index;
      if (operand.v->is_array() && index.v->is_number_integer()) {
        const auto i = index.v->get<std::int64_t>();
        if (i < 0 || static_cast<std::size_t>(i) >= operand.v->size()) {
          return Value::fail("index out of bounds: " + std::to_string(i));
        }
        return Value::of(operand.v->at(static_cast<std::size_t>(i)));
      }
      if (operand.v->is_object() && index.v->is_string()) {
        const std::string k = index.v->get<std::string>();
        if (!operand.v->contains(k)) return Value::fail("no such key: " + k);
        return Value::of(operand.v->at(k));
      }
      return no_overload("_[_]", *operand.v, &*index.v);
    }
    case Kind::Call:
      return call(n, env);
    case Kind::Unary: {
      Value v = eval(*n.args[0], env);
      if (!v.v) return v;
      if (n.name == "!") return v.is_bool() ? Value::of(!v.v->get<bool>()) : no_overload("!_", *v.v);
      if (v.v->is_number_integer()) {
        const auto i = v.v->get<std::int64_t>();
        if (i == INT64_MIN) return Value::fail("integer overflow");
        return Value::of(-i);
      }
      if (v.v->is_number_float()) return Value::of(-v.v->get<double>());
      return no_overload("-_", *v.v);
    }
    case Kind::Ternary: {
      Value c = eval(*n.args[0], env);
      if (!c.v) return c;
      if (!c.is_bool()) return no_overload("_?_:_", *c.v);
      return eval(*n.args[c.v->get<bool>() ? 1 : 2], env);
    }
    case Kind::Binary:
      break;
  }
  if (n.name == "&&" || n.name == "||") {
    // Commutative: a decisive operand wins over an error on the other side.
    const bool decisive = n.name == "||";
    Value l = eval(*n.args[0], env);
    if (l.is_bool() && l.v->get<bool>() == decisive) return l;
    Value r = eval(*n.args[1], env);
    if (r.is_bool() && r.v->get<bool>() == decisive) return r;
    if (!l.v) return l;
    if (!l.is_bool()) return no_overload(n.name, *l.v);
    if (!r.v) return r;
    if (!r.is_bool()) return no_overload(n.name, *r.v);
    return Value::of(!decisive);
  }
  Value l = eval(*n.args[0], env);
  if (!l.v) return l;
  Value r = eval(*n.args[1], env);
  if (!r.v) return r;
  if (n.name == "in") {
    if (r.v->is_array()) return Value::of(std::find(r.v->begin(), r.v->end(), *l.v) != r.v->end());
    if (r.v->is_object() && l.v->is_string()) return Value::of(r.v->contains(l.v->get<std::string>()));
    return no_overload("@in", *l.v, &*r.v);
  }
  if (n.name == "+" || n.name == "-" || n.name == "*" || n.name == "/" || n.name == "%") {
    return arithmetic(n.name, *l.v, *r.v);
  }
  return compare(n.name, *l.v, *r.v);
}

// The chains of field names selected from self (self.a.b -> {a, b}), for the
// schema check; a chain stops at the first index or call.
void selections(const Node& n, std::vector<std::vector<std::string>>& out) {
  if (n.kind == Kind::Select) {
    std::vector<std::string> chain;
    const Node* at = &n;
    while (at->kind == Kind::Select) {
      chain.insert(chain.begin(), at->name);
      at = at->args[0].get();
    }
    if (at->kind == Kind::Ident && at->name == "self") out.push_back(chain);
  }
  for (const NodePtr& a : n.args) selections(*a, out);
}

}  // namespace

Program Program::compile(const std::string& rule) {
  Parser parser(tokenize(rule));
  Program p;
  p.root_ = parser.parse();
  p.uses_old_self_ = parser.uses_old_self;
  return p;
}

std::string Program::check_fields(const json& self_schema) const {
  std::vector<std::vector<std::string>> chains;
  selections(*root_, chains);
  for (const auto& chain : chains) {
    const json* s = &self_schema;
    for (const std::string& field : chain) {
      if (!s->is_object()) break;
      if (s->value("x-kubernetes-preserve-unknown-fields", false) && !s->contains("properties")) break;
      if (s->contains("properties") && s->at("properties").contains(field)) {
        s = &s->at("properties").at(field);
      } else if (s->contains("additionalProperties") && s->at("additionalProperties").is_object()) {
        s = &s->at("additionalProperties");
      } else if (s->value("x-kubernetes-preserve-unknown-fields", false)) {
        break;
      } else {
        return "undefined field '" + field + "'";
      }
    }
  }
  return "";
}

Program::Result Program::evaluate(const json& self, const json* old_self) const {
  const Value v = eval(*root_, Env{self, old_self});
  if (!v.v) return {false, false, v.error};
  if (!v.v->is_boolean()) return {false, false, "rule did not evaluate to a bool: " + type_of(*v.v)};
  return {true, v.v->get<bool>(), ""};
}

}  // namespace backstop::testing::cel

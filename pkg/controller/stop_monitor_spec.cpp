#include "controller/stop_monitor_spec.h"

#include <limits>
#include <regex>

#include "controller/cron.h"

namespace backstop::controller {
namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& path, const json& value, const char* expected) {
  throw InvalidSpec(path + ": expected " + expected + ", got " + value.dump());
}

// One value at `path` ("spec.stopMonitor.batchSize") into a field of its type.
void read_value(const json& value, const std::string& path, bool& out) {
  if (!value.is_boolean()) bad(path, value, "true or false");
  out = value.get<bool>();
}

void read_value(const json& value, const std::string& path, std::int64_t& out) {
  if (!value.is_number_integer() ||
      (value.is_number_unsigned() &&
       value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
    bad(path, value, "an integer");
  }
  out = value.get<std::int64_t>();
}

void read_value(const json& value, const std::string& path, int& out) {
  std::int64_t wide = 0;
  read_value(value, path, wide);
  if (wide < std::numeric_limits<int>::min() || wide > std::numeric_limits<int>::max()) {
    bad(path, value, "a 32-bit integer");
  }
  out = static_cast<int>(wide);
}

void read_value(const json& value, const std::string& path, std::string& out) {
  if (!value.is_string()) bad(path, value, "a string");
  out = value.get<std::string>();
}

template <typename T>
void read_value(const json& value, const std::string& path, std::optional<T>& out) {
  read_value(value, path, out.emplace());
}

template <typename T>
void read_value(const json& value, const std::string& path, std::vector<T>& out) {
  if (!value.is_array()) bad(path, value, "a list");
  out.clear();
  for (std::size_t i = 0; i < value.size(); ++i) {
    read_value(value[i], path + "[" + std::to_string(i) + "]", out.emplace_back());
  }
}

// One object of the resource and its path, read field by field: an absent (or
// null) field keeps the default it is read into.
class ObjectReader {
 public:
  ObjectReader(const json& object, std::string path) : object_(object), path_(std::move(path)) {}

  [[nodiscard]] bool has(const char* key) const { return member(key) != nullptr; }

  template <typename T>
  void read(const char* key, T& out) const {
    if (const json* value = member(key)) read_value(*value, path_of(key), out);
  }

  template <typename T>
  void required(const char* key, T& out) const {
    if (!has(key)) throw InvalidSpec(path_of(key) + " is required");
    read(key, out);
  }

  // The member object `key`; absent: an empty one (its fields take their defaults).
  [[nodiscard]] ObjectReader object(const char* key) const {
    const json* value = member(key);
    if (value == nullptr) return {empty(), path_of(key)};
    if (!value->is_object()) bad(path_of(key), *value, "an object");
    return {*value, path_of(key)};
  }

  [[nodiscard]] ObjectReader required_object(const char* key) const {
    if (!has(key)) throw InvalidSpec(path_of(key) + " is required");
    return object(key);
  }

 private:
  static const json& empty() {
    static const json instance = json::object();
    return instance;
  }

  [[nodiscard]] const json* member(const char* key) const {
    const auto it = object_.find(key);
    return it == object_.end() || it->is_null() ? nullptr : &*it;
  }

  [[nodiscard]] std::string path_of(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  const json& object_;
  std::string path_;
};

SecretKeyRef secret_key_ref(const ObjectReader& parent, const char* key) {
  const ObjectReader ref = parent.required_object(key);
  SecretKeyRef out;
  ref.required("name", out.name);
  ref.read("key", out.key);
  return out;
}

void within(const char* path, std::int64_t value, std::int64_t min, std::int64_t max) {
  if (value < min || value > max) {
    throw InvalidSpec(std::string(path) + ": " + std::to_string(value) + " is outside " + std::to_string(min) + ".." +
                      std::to_string(max));
  }
}

void schedule(const char* path, const std::string& value) {
  if (const auto error = cron_schedule_error(value)) {
    throw InvalidSpec(std::string(path) + ": \"" + value + "\" is not a CronJob schedule: " + *error);
  }
}

// What the CRD's schema declares, checked again: every value below becomes an
// argument of a CronJob, and a schema that was not enforced (an older CRD, a
// pattern that only counts a schedule's fields) must not reach them.
void validate(const StopMonitorSpec& spec) {
  for (std::size_t i = 0; i < spec.tenants.size(); ++i) {
    if (spec.tenants[i] < 1) {
      throw InvalidSpec("spec.tenants[" + std::to_string(i) + "]: " + std::to_string(spec.tenants[i]) +
                        " is not a tenant id (1 or more)");
    }
  }
  static const std::regex symbol("^[A-Z0-9]{2,20}$");
  for (std::size_t i = 0; i < spec.symbols.size(); ++i) {
    if (!std::regex_match(spec.symbols[i], symbol)) {
      throw InvalidSpec("spec.symbols[" + std::to_string(i) + "]: \"" + spec.symbols[i] +
                        "\" is not a symbol (2-20 of A-Z, 0-9)");
    }
  }
  schedule("spec.stopMonitor.schedule", spec.stop_monitor.schedule);
  schedule("spec.trailingStop.schedule", spec.trailing_stop.schedule);
  schedule("spec.outboxDrain.schedule", spec.outbox_drain.schedule);
  schedule("spec.reconcile.schedule", spec.reconcile.schedule);
  within("spec.reconcile.graceSeconds", spec.reconcile.grace_seconds, 0, 86400);
  within("spec.reconcile.maxClosuresPct", spec.reconcile.max_closures_pct, 0, 100);
  static const std::regex account("^[A-Za-z0-9_./:-]{1,128}$");
  if (spec.reconcile.account && !std::regex_match(*spec.reconcile.account, account)) {
    throw InvalidSpec("spec.reconcile.account: \"" + *spec.reconcile.account +
                      "\" is not an account name (1-128 of A-Z, a-z, 0-9, _ . / : -)");
  }
  within("spec.stopMonitor.batchSize", spec.stop_monitor.batch_size, 1, 1000);
  within("spec.stopMonitor.ordersInFlight", spec.stop_monitor.orders_in_flight, 1, 64);
  within("spec.outboxDrain.maxRetries", spec.outbox_drain.max_retries, 1, 1000);
  within("spec.guardrails.maxPriceAgeMs", spec.guardrails.max_price_age_ms, 1, 3600000);
  const auto max = std::numeric_limits<std::int64_t>::max();
  if (spec.guardrails.max_executions_per_minute) {
    within("spec.guardrails.maxExecutionsPerMinute", *spec.guardrails.max_executions_per_minute, 1, max);
  }
  if (spec.guardrails.max_executions_per_hour) {
    within("spec.guardrails.maxExecutionsPerHour", *spec.guardrails.max_executions_per_hour, 1, max);
  }
  if (spec.exchange.price_source != "last" && spec.exchange.price_source != "book") {
    throw InvalidSpec("spec.exchange.priceSource: \"" + spec.exchange.price_source + "\" is not last or book");
  }
}

StopMonitorSpec parse_spec(const ObjectReader& spec) {
  StopMonitorSpec out;
  spec.read("tenants", out.tenants);
  spec.read("symbols", out.symbols);
  spec.read("suspend", out.suspend);
  spec.read("dryRun", out.dry_run);

  const ObjectReader exchange = spec.object("exchange");
  if (!spec.has("exchange") || !exchange.has("credentialsSecretRef")) {
    throw InvalidSpec("spec.exchange.credentialsSecretRef is required");
  }
  const ObjectReader credentials = exchange.object("credentialsSecretRef");
  credentials.required("name", out.exchange.credentials_secret_ref.name);
  credentials.read("apiKeyKey", out.exchange.credentials_secret_ref.api_key_key);
  credentials.read("apiSecretKey", out.exchange.credentials_secret_ref.api_secret_key);
  exchange.read("baseURL", out.exchange.base_url);
  exchange.read("priceSource", out.exchange.price_source);
  exchange.read("wsApiURL", out.exchange.ws_api_url);

  const ObjectReader database = spec.object("database");
  if (!spec.has("database") || !database.has("secretRef")) throw InvalidSpec("spec.database.secretRef is required");
  out.database = secret_key_ref(database, "secretRef");

  const ObjectReader stop_monitor = spec.object("stopMonitor");
  stop_monitor.read("schedule", out.stop_monitor.schedule);
  stop_monitor.read("batchSize", out.stop_monitor.batch_size);
  stop_monitor.read("ordersInFlight", out.stop_monitor.orders_in_flight);

  const ObjectReader trailing = spec.object("trailingStop");
  trailing.read("enabled", out.trailing_stop.enabled);
  trailing.read("schedule", out.trailing_stop.schedule);

  const ObjectReader reconcile = spec.object("reconcile");
  reconcile.read("enabled", out.reconcile.enabled);
  reconcile.read("schedule", out.reconcile.schedule);
  reconcile.read("account", out.reconcile.account);
  reconcile.read("graceSeconds", out.reconcile.grace_seconds);
  reconcile.read("maxClosuresPct", out.reconcile.max_closures_pct);
  reconcile.read("cancelOrphans", out.reconcile.cancel_orphans);

  const ObjectReader outbox = spec.object("outboxDrain");
  outbox.read("enabled", out.outbox_drain.enabled);
  outbox.read("schedule", out.outbox_drain.schedule);
  outbox.read("exchange", out.outbox_drain.exchange);
  outbox.read("maxRetries", out.outbox_drain.max_retries);

  const ObjectReader stream = spec.object("stream");
  stream.read("enabled", out.stream.enabled);
  stream.read("url", out.stream.url);

  if (spec.has("rabbitmq")) out.rabbitmq = secret_key_ref(spec.object("rabbitmq"), "secretRef");
  if (out.outbox_drain.enabled && !out.rabbitmq) {
    throw InvalidSpec("outboxDrain.enabled needs spec.rabbitmq (the broker Secret)");
  }

  const ObjectReader guardrails = spec.object("guardrails");
  guardrails.read("maxPriceAgeMs", out.guardrails.max_price_age_ms);
  guardrails.read("maxExecutionsPerMinute", out.guardrails.max_executions_per_minute);
  guardrails.read("maxExecutionsPerHour", out.guardrails.max_executions_per_hour);

  const ObjectReader image = spec.object("image");
  image.read("repository", out.image.repository);
  image.read("tag", out.image.tag);
  image.read("pullPolicy", out.image.pull_policy);

  spec.read("pushgatewayURL", out.pushgateway_url);
  validate(out);
  return out;
}

}  // namespace

StopMonitor parse_stop_monitor(const json& object) {
  if (!object.is_object()) throw InvalidSpec("the StopMonitor is not an object: " + object.dump());
  const ObjectReader root(object, "");
  const ObjectReader meta = root.required_object("metadata");
  StopMonitor out;
  meta.required("name", out.name);
  meta.read("namespace", out.namespace_name);
  if (!meta.has("uid")) throw InvalidSpec("the StopMonitor has no uid yet (not created by the API server)");
  meta.read("uid", out.uid);
  out.spec = parse_spec(root.required_object("spec"));
  return out;
}

json to_json(const StopMonitorSpec& spec) {
  auto secret = [](const SecretKeyRef& ref) { return json{{"secretRef", {{"name", ref.name}, {"key", ref.key}}}}; };
  json out = {
      {"tenants", spec.tenants},
      {"symbols", spec.symbols},
      {"suspend", spec.suspend},
      {"dryRun", spec.dry_run},
      {"stopMonitor",
       {{"schedule", spec.stop_monitor.schedule},
        {"batchSize", spec.stop_monitor.batch_size},
        {"ordersInFlight", spec.stop_monitor.orders_in_flight}}},
      {"trailingStop", {{"enabled", spec.trailing_stop.enabled}, {"schedule", spec.trailing_stop.schedule}}},
      {"reconcile",
       {{"enabled", spec.reconcile.enabled},
        {"schedule", spec.reconcile.schedule},
        {"graceSeconds", spec.reconcile.grace_seconds},
        {"maxClosuresPct", spec.reconcile.max_closures_pct},
        {"cancelOrphans", spec.reconcile.cancel_orphans}}},
      {"outboxDrain",
       {{"enabled", spec.outbox_drain.enabled},
        {"schedule", spec.outbox_drain.schedule},
        {"exchange", spec.outbox_drain.exchange},
        {"maxRetries", spec.outbox_drain.max_retries}}},
      {"stream", {{"enabled", spec.stream.enabled}}},
      {"exchange",
       {{"baseURL", spec.exchange.base_url},
        {"priceSource", spec.exchange.price_source},
        {"credentialsSecretRef",
         {{"name", spec.exchange.credentials_secret_ref.name},
          {"apiKeyKey", spec.exchange.credentials_secret_ref.api_key_key},
          {"apiSecretKey", spec.exchange.credentials_secret_ref.api_secret_key}}}}},
      {"database", secret(spec.database)},
      {"guardrails", {{"maxPriceAgeMs", spec.guardrails.max_price_age_ms}}},
      {"image",
       {{"repository", spec.image.repository}, {"tag", spec.image.tag}, {"pullPolicy", spec.image.pull_policy}}},
  };
  if (spec.stream.url) out["stream"]["url"] = *spec.stream.url;
  if (spec.exchange.ws_api_url) out["exchange"]["wsApiURL"] = *spec.exchange.ws_api_url;
  if (spec.reconcile.account) out["reconcile"]["account"] = *spec.reconcile.account;
  if (spec.rabbitmq) out["rabbitmq"] = secret(*spec.rabbitmq);
  if (spec.guardrails.max_executions_per_minute) {
    out["guardrails"]["maxExecutionsPerMinute"] = *spec.guardrails.max_executions_per_minute;
  }
  if (spec.guardrails.max_executions_per_hour) {
    out["guardrails"]["maxExecutionsPerHour"] = *spec.guardrails.max_executions_per_hour;
  }
  if (spec.pushgateway_url) out["pushgatewayURL"] = *spec.pushgateway_url;
  return out;
}

}  // namespace backstop::controller

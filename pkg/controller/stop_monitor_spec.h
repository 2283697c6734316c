// The StopMonitor custom resource (backstop.dev/v1alpha1) as typed values, in
// the manner of kubebuilder's api/v1alpha1/<kind>_types.go: parsed and checked
// once from the object the API server returns, then read as fields. The member
// initializers below are the spec's defaults in code, the one place; the CRD
// (crds/stopmonitors.backstop.dev.yaml) declares the same ones for the API
// server, and stop_monitor_spec_test reads the CRD to keep the two equal.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace backstop::controller {

// A StopMonitor the schema let through but that cannot be turned into objects;
// the message names the field (its path in the object) and, for a bad value, the value.
class InvalidSpec : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A key of a Secret in the StopMonitor's namespace.
struct SecretKeyRef {
  std::string name;
  std::string key = "url";
};

struct StopMonitorJobSpec {
  std::string schedule = "* * * * *";
  int batch_size = 64;       // --batch-size
  int orders_in_flight = 8;  // --orders-in-flight
};

struct TrailingStopJobSpec {
  bool enabled = true;
  std::string schedule = "* * * * *";
};

// The reconcile CronJob (issue 13): the account against the operations.
struct ReconcileJobSpec {
  bool enabled = true;
  std::string schedule = "*/2 * * * *";
  std::optional<std::string> account;  // --account (absent: the tenants that name no account)
  int grace_seconds = 30;              // --grace-ms
  int max_closures_pct = 50;           // --max-closures-pct
  bool cancel_orphans = false;         // --cancel-orphans
};

struct OutboxDrainJobSpec {
  bool enabled = false;
  std::string schedule = "* * * * *";
  std::string exchange = "stop_events";
  int max_retries = 10;
};

struct StreamSpec {
  bool enabled = false;
  std::optional<std::string> url;  // absent: the binary's default (the exchange's public stream)
};

struct CredentialsSecretRef {
  std::string name;
  std::string api_key_key = "api-key";
  std::string api_secret_key = "api-secret";
};

struct ExchangeSpec {
  std::string base_url = "https://api.binance.com";
  std::string price_source = "last";
  std::optional<std::string> ws_api_url;        // absent: reconcile's default (the exchange's WebSocket API)
  CredentialsSecretRef credentials_secret_ref;  // required
};

struct GuardrailsSpec {
  int max_price_age_ms = 30000;
  std::optional<std::int64_t> max_executions_per_minute;
  std::optional<std::int64_t> max_executions_per_hour;
};

struct ImageSpec {
  std::string repository = "ghcr.io/backstop/backstop";
  std::string tag = "latest";
  std::string pull_policy = "IfNotPresent";
};

struct StopMonitorSpec {
  std::vector<std::int64_t> tenants;  // empty: every tenant
  std::vector<std::string> symbols;   // empty: every symbol
  bool suspend = false;
  bool dry_run = false;
  StopMonitorJobSpec stop_monitor;
  TrailingStopJobSpec trailing_stop;
  ReconcileJobSpec reconcile;
  OutboxDrainJobSpec outbox_drain;
  StreamSpec stream;
  ExchangeSpec exchange;                 // required
  SecretKeyRef database;                 // spec.database.secretRef, required
  std::optional<SecretKeyRef> rabbitmq;  // spec.rabbitmq.secretRef; required by outboxDrain.enabled
  GuardrailsSpec guardrails;
  ImageSpec image;
  std::optional<std::string> pushgateway_url;
};

// The StopMonitor object: what the controller needs of its metadata, and its spec.
struct StopMonitor {
  std::string name;
  std::string namespace_name = "default";
  std::string uid;
  StopMonitorSpec spec;
};

// Reads a StopMonitor as the API returns it (absent fields take the defaults
// above). Throws InvalidSpec naming the field and its value: a field of the
// wrong type, a missing required field, no uid yet, or outboxDrain enabled
// without spec.rabbitmq.
[[nodiscard]] StopMonitor parse_stop_monitor(const nlohmann::json& object);

// The spec with every default applied, in the resource's own (camelCase) shape.
[[nodiscard]] nlohmann::json to_json(const StopMonitorSpec& spec);

}  // namespace backstop::controller

// What a StopMonitor should own (the reconciler's pure half): its CronJobs
// for stop-monitor, trailing-stop and outbox-drain, and the optional --stream
// Deployment, as Kubernetes objects. No I/O: the reconciler compares these
// with what exists and creates, updates or deletes the difference.
//
// Every object: name <monitor>-<component>, the StopMonitor's namespace,
// labels app.kubernetes.io/{name,instance,component,managed-by}, a controller
// ownerReference to the StopMonitor (deletion is left to garbage collection).
// CronJobs: concurrencyPolicy Forbid, a starting deadline, history limits, a
// backoffLimit and activeDeadlineSeconds; containers run as non-root with a
// read-only root filesystem and no capabilities; credentials come from the
// Secrets the spec names (never from the spec itself).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "controller/stop_monitor_spec.h"

namespace backstop::controller {

using nlohmann::json;

struct Desired {
  std::vector<json> cronjobs;       // batch/v1 CronJob
  std::vector<json> deployments;    // apps/v1 Deployment (the --stream one, if enabled)
  std::vector<std::string> absent;  // names of owned objects that must not exist (disabled components)
};

// `monitor`: the StopMonitor as parse_stop_monitor read it.
Desired desired_objects(const StopMonitor& monitor);

// A Pushgateway grouping that one of the StopMonitor's CronJobs pushes its run
// metrics to, read off the CronJob's container: the job (backstop_<binary>)
// and the instance label (its BACKSTOP_METRICS_INSTANCE, "<namespace>/<name>").
struct PushedRunMetrics {
  std::string job;
  std::string instance;
};

// The groupings a StopMonitor's CronJobs push, so that an alert can tell a job
// that never reported: none while suspended or without pushgatewayURL, and
// none for a binary in --dry-run (it pushes nothing).
[[nodiscard]] std::vector<PushedRunMetrics> pushed_run_metrics(const StopMonitor& monitor);

}  // namespace backstop::controller

// The controller's run loop, as controller-runtime's manager: leader election
// on a Lease, and while leading, informers (list + watch with resourceVersion,
// relist on 410 Gone and periodically) on StopMonitors and on the CronJobs and
// Deployments they own, feeding a rate-limited work queue that workers drain
// through the Reconciler. A 409 or any failure requeues the key with
// exponential backoff. Leadership lost (the lease not renewed within the renew
// deadline, or taken over): the informers and workers stop at once and the
// process goes back to being a candidate.
//
// Metrics (the registry given): reconcile totals by result, errors, duration,
// work-queue depth, leader status, watch restarts, StopMonitors known/ready,
// and while leading, one series per run-metrics grouping a StopMonitor's
// CronJobs push (backstop_controller_stopmonitor_push_expected_since_timestamp_seconds
// {stopmonitor="<namespace>/<name>", push_job}), so that an alert can tell a
// CronJob that never reported (its series is absent at the Pushgateway).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

#include "controller/image_policy.h"
#include "controller/reconciler.h"
#include "kube/client.h"
#include "kube/events.h"
#include "kube/leader_election.h"
#include "kube/object_cache.h"
#include "kube/work_queue.h"

namespace backstop::controller {

struct ManagerOptions {
  std::string identity;  // this process in the Lease (Pod name)
  std::string lease_namespace = "default";
  std::string lease_name = "backstop-controller";
  std::chrono::seconds lease_duration{15};
  std::chrono::milliseconds renew_deadline{10000};  // leading stops if not renewed for this long
  std::chrono::milliseconds retry_period{2000};     // acquire / renew attempts
  std::string watch_namespace;                      // empty: every namespace
  int workers = 4;
  std::chrono::seconds watch_window{300};  // timeoutSeconds of each watch request
  std::chrono::seconds resync{600};        // relist (and reconcile every StopMonitor) this often
  ImagePolicy images;                      // which images StopMonitors may run
};

class ControllerMetrics {
 public:
  explicit ControllerMetrics(prometheus::Registry& registry);

  prometheus::Family<prometheus::Counter>& reconcile_total;  // {result}
  prometheus::Counter& reconcile_success;
  prometheus::Counter& reconcile_conflict;  // 409: someone wrote first, requeued
  prometheus::Counter& reconcile_error;
  prometheus::Counter& reconcile_invalid;  // the spec is invalid (reported in status)
  prometheus::Histogram& reconcile_duration;
  prometheus::Gauge& queue_depth;
  prometheus::Gauge& leader;
  prometheus::Gauge& stopmonitors;
  prometheus::Gauge& stopmonitors_ready;
  // {stopmonitor, push_job} = the StopMonitor's creation time (Unix seconds)
  prometheus::Family<prometheus::Gauge>& push_expected;
  prometheus::Family<prometheus::Counter>& watch_restarts;  // {resource, reason}
  prometheus::Counter& leader_transitions;
};

class Manager {
 public:
  // `client`: the API (its own transports for watches); `events` may be null.
  Manager(kube::KubeClient& client, ManagerOptions options, ControllerMetrics& metrics,
          kube::EventRecorder* events = nullptr);

  // Runs until `stop` is requested: campaigns, leads, steps down, campaigns again.
  // On the way out the lease is released so a standby takes over at once.
  void run(std::stop_token stop);

  // /healthz: the election loop is turning. /readyz: the API answered recently
  // and, while leading, every informer has listed once.
  [[nodiscard]] bool healthy() const;
  [[nodiscard]] bool ready() const;
  [[nodiscard]] bool leading() const { return leading_; }

 private:
  struct Informer;
  void lead(std::stop_token stop);  // informers + workers until `stop`
  void inform(const Informer& informer, kube::WorkQueue& queue, std::stop_token stop);
  void work(kube::WorkQueue& queue, std::stop_token stop);
  void observe_monitor(const std::string& type, const kube::json& object);
  void forget_pushes(const std::string& key);  // under ready_mutex_

  kube::KubeClient& client_;
  ManagerOptions options_;
  ControllerMetrics& metrics_;
  // The informers' stores, which the reconciler reads instead of the API server.
  kube::ObjectCache monitors_, cronjobs_, deployments_;
  Reconciler reconciler_;

  std::atomic<bool> leading_{false};
  std::atomic<int> synced_{0};
  std::atomic<int> informers_{0};
  std::atomic<long long> last_loop_ns_{0};    // steady clock, election loop heartbeat
  std::atomic<long long> last_api_ok_ns_{0};  // steady clock, last successful lease round trip
  std::mutex ready_mutex_;
  std::map<std::string, bool> monitor_ready_;                              // namespace/name -> Ready condition True
  std::map<std::string, std::vector<prometheus::Gauge*>> monitor_pushes_;  // namespace/name -> push_expected series
};

}  // namespace backstop::controller

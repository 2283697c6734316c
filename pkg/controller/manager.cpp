#include "controller/manager.h"

#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <thread>
#include <vector>

#include "controller/desired.h"
#include "runtime/log.h"

namespace backstop::controller {
namespace {

using Clock = std::chrono::steady_clock;
// A StopMonitor whose Secrets are missing is looked at again this often (the
// controller does not watch Secrets: it may not list them).
constexpr std::chrono::milliseconds kSecretsRecheck{15000};

long long ticks_now() { return Clock::now().time_since_epoch().count(); }

std::chrono::nanoseconds since(long long ticks) { return Clock::now().time_since_epoch() - Clock::duration(ticks); }

// Sleeps up to `d`, waking early when `stop` is requested.
void sleep_for(std::chrono::milliseconds d, const std::stop_token& stop) {
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  cv.wait_for(lock, stop, d, [] { return false; });
}

// metadata.creationTimestamp (RFC 3339, UTC) in Unix seconds; now when absent or unreadable.
double created_seconds(const kube::json& object) {
  const std::string text = object.at("metadata").value("creationTimestamp", "");
  std::tm tm{};
  if (std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec) == 6) {
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<double>(timegm(&tm));
  }
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string monitor_key(const kube::json& object) {
  const kube::json& meta = object.at("metadata");
  return meta.value("namespace", "") + "/" + meta.value("name", "");
}

// The StopMonitor that controls an owned object, as a key; "" for none.
std::string owner_key(const kube::json& object) {
  const kube::json& meta = object.at("metadata");
  for (const auto& ref : meta.value("ownerReferences", kube::json::array())) {
    if (ref.value("kind", "") == "StopMonitor" && ref.value("controller", false) &&
        ref.value("apiVersion", "").rfind("backstop.dev/", 0) == 0) {
      return meta.value("namespace", "") + "/" + ref.value("name", "");
    }
  }
  return "";
}

}  // namespace

struct Manager::Informer {
  std::string resource;  // for logs and metrics
  std::string path;      // collection path with query (label selector)
  std::function<std::string(const kube::json&)> key;
  bool monitors = false;  // StopMonitors: also tracks their Ready condition
  kube::ObjectCache* cache = nullptr;
};

ControllerMetrics::ControllerMetrics(prometheus::Registry& registry)
    : reconcile_total(prometheus::BuildCounter()
                          .Name("backstop_controller_reconcile_total")
                          .Help("Reconciles of StopMonitors, by result (conflict: a 409, requeued)")
                          .Register(registry)),
      reconcile_success(reconcile_total.Add({{"result", "success"}})),
      reconcile_conflict(reconcile_total.Add({{"result", "conflict"}})),
      reconcile_error(reconcile_total.Add({{"result", "error"}})),
      reconcile_invalid(reconcile_total.Add({{"result", "invalid_spec"}})),
      reconcile_duration(prometheus::BuildHistogram()
                             .Name("backstop_controller_reconcile_duration_seconds")
                             .Help("Time of one reconcile, API calls included")
                             .Register(registry)
                             .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                              0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
      queue_depth(prometheus::BuildGauge()
                      .Name("backstop_controller_workqueue_depth")
                      .Help("StopMonitors waiting to be reconciled (ready or backing off)")
                      .Register(registry)
                      .Add({})),
      leader(prometheus::BuildGauge()
                 .Name("backstop_controller_leader")
                 .Help("1 while this controller holds the leader Lease")
                 .Register(registry)
                 .Add({})),
      stopmonitors(prometheus::BuildGauge()
                       .Name("backstop_controller_stopmonitors")
                       .Help("StopMonitors the leader watches")
                       .Register(registry)
                       .Add({})),
      stopmonitors_ready(prometheus::BuildGauge()
                             .Name("backstop_controller_stopmonitors_ready")
                             .Help("StopMonitors whose Ready condition is True")
                             .Register(registry)
                             .Add({})),
      push_expected(prometheus::BuildGauge()
                        .Name("backstop_controller_stopmonitor_push_expected_since_timestamp_seconds")
                        .Help("Run metrics a StopMonitor's CronJob pushes (push_job, instance = the stopmonitor "
                              "label), expected since the StopMonitor's creation")
                        .Register(registry)),
      watch_restarts(prometheus::BuildCounter()
                         .Name("backstop_controller_watch_restarts_total")
                         .Help("Watches restarted with a relist, by resource and reason (expired = 410 Gone)")
                         .Register(registry)),
      leader_transitions(prometheus::BuildCounter()
                             .Name("backstop_controller_leader_transitions_total")
                             .Help("Times this controller became the leader")
                             .Register(registry)
                             .Add({})) {}

Manager::Manager(kube::KubeClient& client, ManagerOptions options, ControllerMetrics& metrics,
                 kube::EventRecorder* events)
    : client_(client),
      options_(std::move(options)),
      metrics_(metrics),
      reconciler_(client, rfc3339_now, events, options_.images, {&monitors_, &cronjobs_, &deployments_}) {
  last_loop_ns_ = ticks_now();
}

bool Manager::healthy() const {
  return since(last_loop_ns_) < std::max(std::chrono::milliseconds(10000), options_.retry_period * 5);
}

bool Manager::ready() const {
  if (last_api_ok_ns_ == 0 || since(last_api_ok_ns_) > options_.lease_duration) return false;
  return !leading_ || synced_ == informers_;
}

void Manager::run(std::stop_token stop) {
  kube::LeaderElector elector(
      client_, {options_.lease_namespace, options_.lease_name, options_.identity, options_.lease_duration});
  std::unique_ptr<std::jthread> session;  // the leading part, while leading
  auto last_renew = Clock::now();
  auto stop_leading = [&] {
    session.reset();  // requests stop and joins
    leading_ = false;
    metrics_.leader.Set(0);
  };
  while (!stop.stop_requested()) {
    last_loop_ns_ = ticks_now();
    bool holds = false;
    try {
      // Every call of the round ends by the renew deadline (a leader's counts
      // from its last renewal): a leader whose API calls hang steps down when
      // it passes, before a standby may take the lease over, never after the
      // client's request timeout.
      const auto deadline = (session ? last_renew : Clock::now()) + options_.renew_deadline;
      holds = elector.try_acquire_or_renew(deadline);
      last_api_ok_ns_ = ticks_now();
      if (holds) last_renew = Clock::now();
    } catch (const std::exception& e) {
      log::warn("lease round failed",
                {{"lease", options_.lease_namespace + "/" + options_.lease_name}, {"error", e.what()}});
      // Still the leader until the renew deadline passes without a renewal.
      holds = session && Clock::now() - last_renew < options_.renew_deadline;
    }
    if (holds && !session) {
      log::info("became the leader",
                {{"identity", options_.identity}, {"lease", options_.lease_namespace + "/" + options_.lease_name}});
      metrics_.leader.Set(1);
      metrics_.leader_transitions.Increment();
      leading_ = true;
      session = std::make_unique<std::jthread>([this](std::stop_token s) { lead(s); });
    } else if (!holds && session) {
      const bool taken = !elector.observed_holder().empty() && elector.observed_holder() != options_.identity;
      log::warn("leadership lost: stopping reconciles",
                {{"identity", options_.identity},
                 {"reason", taken ? "lease taken over" : "lease not renewed within the renew deadline"}});
      stop_leading();
    } else if (!holds) {
      log::debug("standing by", {{"leader", elector.observed_holder()}});
    }
    sleep_for(std::chrono::duration_cast<std::chrono::milliseconds>(options_.retry_period), stop);
  }
  if (session) {
    stop_leading();
    elector.release(Clock::now() + options_.renew_deadline);
    log::info("released the lease", {{"identity", options_.identity}});
  }
}

void Manager::lead(std::stop_token stop) {
  kube::WorkQueue queue;
  const std::string ns_part = options_.watch_namespace.empty() ? "" : "/namespaces/" + options_.watch_namespace;
  const std::string owned = kube::label_selector({{"app.kubernetes.io/managed-by", "backstop-controller"}});
  const std::vector<Informer> informers = {
      {"stopmonitors", "/apis/backstop.dev/v1alpha1" + ns_part + "/stopmonitors", monitor_key, true, &monitors_},
      {"cronjobs", "/apis/batch/v1" + ns_part + "/cronjobs" + owned, owner_key, false, &cronjobs_},
      {"deployments", "/apis/apps/v1" + ns_part + "/deployments" + owned, owner_key, false, &deployments_},
  };
  synced_ = 0;
  informers_ = static_cast<int>(informers.size());
  std::vector<std::jthread> threads;
  for (const Informer& informer : informers) {
    threads.emplace_back([this, &informer, &queue](std::stop_token s) { inform(informer, queue, s); });
  }
  for (int i = 0; i < options_.workers; ++i) {
    threads.emplace_back([this, &queue](std::stop_token s) { work(queue, s); });
  }
  while (!stop.stop_requested()) {
    metrics_.queue_depth.Set(static_cast<double>(queue.depth()));
    sleep_for(std::chrono::milliseconds(250), stop);
  }
  for (auto& t : threads) t.request_stop();
  queue.shut_down();
  threads.clear();  // joins
  metrics_.queue_depth.Set(0);
  // Only the leader says what is expected: a standby's stale series would
  // outlive a StopMonitor deleted after it stepped down.
  // Nor the counts of StopMonitors: a standby's would double the dashboard's sums.
  std::lock_guard lock(ready_mutex_);
  while (!monitor_pushes_.empty()) forget_pushes(monitor_pushes_.begin()->first);
  monitor_ready_.clear();
  metrics_.stopmonitors.Set(0);
  metrics_.stopmonitors_ready.Set(0);
}

void Manager::observe_monitor(const std::string& type, const kube::json& object) {
  const std::string key = monitor_key(object);
  bool is_ready = false;
  for (const auto& c : object.value("status", kube::json::object()).value("conditions", kube::json::array())) {
    if (c.value("type", "") == "Ready") is_ready = c.value("status", "") == "True";
  }
  std::vector<PushedRunMetrics> pushes;
  if (type != "DELETED") {
    try {
      pushes = pushed_run_metrics(parse_stop_monitor(object));
    } catch (const InvalidSpec&) {
      // No CronJobs are made for it (the reconciler reports why): nothing is expected.
    }
  }
  std::lock_guard lock(ready_mutex_);
  forget_pushes(key);
  if (type == "DELETED") {
    monitor_ready_.erase(key);
  } else {
    monitor_ready_[key] = is_ready;
    const double since = created_seconds(object);
    for (const PushedRunMetrics& p : pushes) {
      prometheus::Gauge& g = metrics_.push_expected.Add({{"stopmonitor", p.instance}, {"push_job", p.job}});
      g.Set(since);
      monitor_pushes_[key].push_back(&g);
    }
  }
  long ready_count = 0;
  for (const auto& [k, r] : monitor_ready_) ready_count += r ? 1 : 0;
  metrics_.stopmonitors.Set(static_cast<double>(monitor_ready_.size()));
  metrics_.stopmonitors_ready.Set(static_cast<double>(ready_count));
}

void Manager::forget_pushes(const std::string& key) {
  const auto found = monitor_pushes_.find(key);
  if (found == monitor_pushes_.end()) return;
  for (prometheus::Gauge* g : found->second) metrics_.push_expected.Remove(g);
  monitor_pushes_.erase(found);
}

void Manager::inform(const Informer& informer, kube::WorkQueue& queue, std::stop_token stop) {
  bool synced = false;
  auto backoff = std::chrono::milliseconds(500);
  while (!stop.stop_requested()) {
    try {
      const kube::json list = client_.list(informer.path);
      informer.cache->replace(list.value("items", kube::json::array()));
      if (informer.monitors) {
        std::lock_guard lock(ready_mutex_);
        monitor_ready_.clear();
        while (!monitor_pushes_.empty()) forget_pushes(monitor_pushes_.begin()->first);
      }
      for (const auto& item : list.value("items", kube::json::array())) {
        if (informer.monitors) observe_monitor("ADDED", item);
        if (const std::string key = informer.key(item); !key.empty()) queue.add(key);
      }
      if (!synced) {
        synced = true;
        ++synced_;
        log::info("informer synced",
                  {{"resource", informer.resource}, {"objects", list.value("items", kube::json::array()).size()}});
      }
      backoff = std::chrono::milliseconds(500);
      std::string version = list["metadata"].value("resourceVersion", "");
      const auto listed_at = Clock::now();
      while (!stop.stop_requested() && Clock::now() - listed_at < options_.resync) {
        version = client_.watch(
            informer.path, version, options_.watch_window,
            [&](const kube::WatchEvent& event) {
              if (event.type == "BOOKMARK") return;
              // The echo of this controller's own write is not reconciled again:
              // the reconcile that wrote it acted on what it wrote.
              const bool news = informer.cache->apply(event.type, event.object);
              if (informer.monitors) observe_monitor(event.type, event.object);
              if (!news) return;
              if (const std::string key = informer.key(event.object); !key.empty()) queue.add(key);
            },
            stop);
      }
      if (!stop.stop_requested())
        metrics_.watch_restarts.Add({{"resource", informer.resource}, {"reason", "resync"}}).Increment();
    } catch (const std::exception& e) {
      if (const auto* api = dynamic_cast<const kube::ApiError*>(&e); api != nullptr && api->gone()) {
        // The history the watch asked for was compacted: list again, from now.
        log::info("watch expired; relisting", {{"resource", informer.resource}, {"error", e.what()}});
        metrics_.watch_restarts.Add({{"resource", informer.resource}, {"reason", "expired"}}).Increment();
        continue;
      }
      // The API server away or restarting, or an API error: retry the list with backoff.
      log::warn("list/watch failed", {{"resource", informer.resource}, {"error", e.what()}});
      metrics_.watch_restarts.Add({{"resource", informer.resource}, {"reason", "error"}}).Increment();
      sleep_for(backoff, stop);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
    }
  }
}

void Manager::work(kube::WorkQueue& queue, std::stop_token stop) {
  // The reconciler reads the informers' caches: not before every one has listed.
  while (!stop.stop_requested() && synced_ < informers_) sleep_for(std::chrono::milliseconds(20), stop);
  while (!stop.stop_requested()) {
    const auto key = queue.get(std::chrono::milliseconds(250));
    if (!key) continue;
    const auto slash = key->find('/');
    const auto started = Clock::now();
    try {
      const ReconcileResult r = reconciler_.reconcile(key->substr(0, slash), key->substr(slash + 1));
      queue.forget(*key);
      if (r.secrets_missing) queue.add_after(*key, kSecretsRecheck);
      (r.invalid || r.rejected ? metrics_.reconcile_invalid : metrics_.reconcile_success).Increment();
      if (r.created + r.updated + r.deleted > 0 || r.invalid || r.rejected) {
        log::info("reconciled", {{"stopmonitor", *key},
                                 {"created", r.created},
                                 {"updated", r.updated},
                                 {"deleted", r.deleted},
                                 {"invalid", r.invalid},
                                 {"rejected", r.rejected},
                                 {"message", r.message}});
      }
    } catch (const kube::ApiError& e) {
      (e.conflict() ? metrics_.reconcile_conflict : metrics_.reconcile_error).Increment();
      if (!e.conflict())
        log::warn("reconcile failed; retrying with backoff", {{"stopmonitor", *key}, {"error", e.what()}});
      queue.add_rate_limited(*key);
    } catch (const std::exception& e) {
      metrics_.reconcile_error.Increment();
      log::warn("reconcile failed; retrying with backoff", {{"stopmonitor", *key}, {"error", e.what()}});
      queue.add_rate_limited(*key);
    }
    metrics_.reconcile_duration.Observe(std::chrono::duration<double>(Clock::now() - started).count());
    queue.done(*key);
  }
}

}  // namespace backstop::controller

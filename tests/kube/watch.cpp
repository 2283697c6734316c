#include "watch.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "field_selector.h"
#include "http_common.h"
#include "label_selector.h"

namespace backstop::testing {

using nlohmann::json;

void serve_watch(const httplib::Request& req, httplib::Response& res, std::mutex& mutex, ObjectStore& store,
                 const ResourceRegistry& registry, const std::atomic<bool>& stopping) {
  const std::vector<std::string> parts = split_path(req.path);
  std::string group, version, ns;
  std::size_t at = 0;
  if (parts.size() >= 3 && parts[0] == "api") {
    version = parts[1];
    at = 2;
  } else if (parts.size() >= 4 && parts[0] == "apis") {
    group = parts[1];
    version = parts[2];
    at = 3;
  }
  if (at != 0 && parts.size() == at + 3 && parts[at] == "namespaces") {
    ns = parts[at + 1];
    at += 2;
  }
  std::unique_lock lock(mutex);
  const Resource* r = at != 0 && parts.size() == at + 1 ? registry.find(group, version, parts[at]) : nullptr;
  if (r == nullptr) {
    res.status = 404;
    res.set_content(status(404, "NotFound", "the server could not find the requested resource").dump(),
                    "application/json");
    return;
  }
  const std::string resource = r->group_plural();
  const std::string kind = r->kind;
  const std::string api_version = r->group_version();
  LabelSelector selector;
  FieldSelector fields;
  try {
    selector = LabelSelector::parse(req.get_param_value("labelSelector"));
    fields = FieldSelector::parse(req.get_param_value("fieldSelector"), *r);
  } catch (const std::invalid_argument& e) {
    res.status = 400;
    res.set_content(status(400, "BadRequest", e.what()).dump(), "application/json");
    return;
  }
  const std::string from_text = req.get_param_value("resourceVersion");
  long from = from_text.empty() ? 0 : std::stol(from_text);
  const bool bookmarks = req.get_param_value("allowWatchBookmarks") == "true";
  const int timeout = req.has_param("timeoutSeconds") ? std::stoi(req.get_param_value("timeoutSeconds")) : 1800;
  std::string initial;
  if (from == 0) {
    // "Any" version: the current objects as ADDED, then what follows.
    for (const auto& [k, object] : store.objects()) {
      if (k.rfind(resource + "/", 0) != 0) continue;
      if (!ns.empty() && object.at("metadata").value("namespace", "") != ns) continue;
      if (!selector.matches(object) || !fields.matches(object)) continue;
      initial += json{{"type", "ADDED"}, {"object", object}}.dump() + "\n";
    }
    from = store.revision();
  } else if (from < store.compacted()) {
    initial = json{{"type", "ERROR"},
                   {"object", status(410, "Expired",
                                     "too old resource version: " + std::to_string(from) + " (" +
                                         std::to_string(store.compacted()) + ")")}}
                  .dump() +
              "\n";
    res.status = 200;
    res.set_content(initial, "application/json");
    return;
  }
  const long epoch = store.watch_epoch();
  lock.unlock();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
  auto sent = std::make_shared<long>(from);
  auto first = std::make_shared<std::string>(std::move(initial));
  res.status = 200;
  // The watch media type (also keeps cpp-httplib from gzip-buffering the stream).
  res.set_chunked_content_provider(
      "application/json;stream=watch", [=, &mutex, &store, &stopping](std::size_t, httplib::DataSink& sink) {
        if (!first->empty()) {
          sink.write(first->data(), first->size());
          first->clear();
        }
        std::unique_lock l(mutex);
        const std::deque<WatchEvent>& history = store.history();
        store.changed().wait_until(
            l, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)), [&] {
              return stopping || store.watch_epoch() != epoch || (!history.empty() && history.back().revision > *sent);
            });
        if (store.watch_epoch() != epoch) {  // cut off (see /admin/compact?advance)
          l.unlock();
          sink.done();
          return true;
        }
        std::string lines;
        for (const WatchEvent& e : history) {
          if (e.revision <= *sent || e.resource != resource || (!ns.empty() && e.ns != ns)) continue;
          if (!selector.matches(e.object) || !fields.matches(e.object)) continue;
          lines += json{{"type", e.type}, {"object", e.object}}.dump() + "\n";
        }
        if (!history.empty()) *sent = std::max(*sent, history.back().revision);
        const bool end = stopping || std::chrono::steady_clock::now() >= deadline;
        if (end && bookmarks) {
          lines += json{{"type", "BOOKMARK"},
                        {"object",
                         {{"kind", kind},
                          {"apiVersion", api_version},
                          {"metadata", {{"resourceVersion", std::to_string(store.revision())}}}}}}
                       .dump() +
                   "\n";
        }
        l.unlock();
        if (!lines.empty() && !sink.write(lines.data(), lines.size())) return false;
        if (end) sink.done();
        return true;
      });
}

}  // namespace backstop::testing

// A small Kubernetes API client over JSON (the controller's needs): get, list,
// create, replace with optimistic concurrency, the status subresource, JSON
// merge patch, delete, and watch windows from a resourceVersion. Errors carry
// the API's status code and reason, so callers can requeue on 409, relist on
// 410 and treat 404 as absence.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>

#include "kube/config.h"
#include "kube/token_source.h"
#include "net/http.h"

namespace backstop::kube {

using nlohmann::json;

class ApiError : public std::runtime_error {
 public:
  ApiError(int code, std::string reason, const std::string& message)
      : std::runtime_error(message), code_(code), reason_(std::move(reason)) {}
  [[nodiscard]] int code() const { return code_; }
  [[nodiscard]] const std::string& reason() const { return reason_; }  // NotFound, Conflict, Expired, ...
  [[nodiscard]] bool conflict() const { return code_ == 409; }
  [[nodiscard]] bool gone() const { return code_ == 410; }

 private:
  int code_;
  std::string reason_;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK
  json object;
};

class KubeClient {
 public:
  // `watch_http` carries watches (long reads; its timeout must exceed the
  // window); none: `http` does.
  KubeClient(KubeConfig config, std::unique_ptr<net::HttpTransport> http,
             std::unique_ptr<net::HttpTransport> watch_http = nullptr)
      : config_(std::move(config)),
        token_(std::make_shared<TokenSource>(config_)),
        http_(std::move(http)),
        watch_http_(std::move(watch_http)) {}

  // A bound on one call's whole exchange, shorter than the transport's request
  // timeout (e.g. the leader's renew deadline); past it the call throws
  // net::TransportError. None: the transport's timeout.
  using Timeout = std::optional<std::chrono::milliseconds>;

  // nullopt when the object does not exist.
  std::optional<json> get(const std::string& path, Timeout timeout = std::nullopt);
  json list(const std::string& path);  // the List (items, metadata.resourceVersion)
  json create(const std::string& collection, const json& object, Timeout timeout = std::nullopt);
  // PUT with the object's metadata.resourceVersion: ApiError 409 if it changed meanwhile.
  json replace(const std::string& path, const json& object, Timeout timeout = std::nullopt);
  json replace_status(const std::string& path, const json& object);
  json merge_patch(const std::string& path, const json& patch);
  void remove(const std::string& path);
  // Events after `resource_version` for up to `window`, each to `on_event` as
  // it arrives (bookmarks included), until the window ends or `stop` is
  // requested; returns the last resourceVersion seen. ApiError 410 when the
  // version is too old: relist. `collection` may carry a query (labelSelector).
  std::string watch(const std::string& collection, const std::string& resource_version, std::chrono::seconds window,
                    const std::function<void(const WatchEvent&)>& on_event, std::stop_token stop = {});

  [[nodiscard]] const KubeConfig& config() const { return config_; }

 private:
  [[nodiscard]] net::HttpRequest request_for(const std::string& method, const std::string& target,
                                             const std::string& body = "",
                                             const std::string& content_type = "application/json") const;
  net::HttpResponse call(const std::string& method, const std::string& target, const std::string& body = "",
                         const std::string& content_type = "application/json", Timeout timeout = std::nullopt);
  json expect_json(const std::string& method, const std::string& target, const net::HttpResponse& response);

  KubeConfig config_;
  std::shared_ptr<TokenSource> token_;  // the bearer token, read again as its file rotates
  std::unique_ptr<net::HttpTransport> http_;
  std::unique_ptr<net::HttpTransport> watch_http_;
};

// A client for `config` over cpprestsdk (its server, CA and TLS settings):
// requests time out after `timeout`, watches get a transport of their own.
std::unique_ptr<KubeClient> make_client(const KubeConfig& config,
                                        std::chrono::seconds timeout = std::chrono::seconds(30));

// "?labelSelector=k%3Dv,..." for equality selectors, to append to a collection path.
std::string label_selector(const std::map<std::string, std::string>& labels);

}  // namespace backstop::kube

#include "kube/client.h"

namespace backstop::kube {
namespace {

// Measured with ./dev bench --only 9: 1 thread did best (40, the default,
// doubled the controller's CPU time).
constexpr std::size_t kHttpThreads = 1;

}  // namespace

net::HttpRequest KubeClient::request_for(const std::string& method, const std::string& target, const std::string& body,
                                         const std::string& content_type) const {
  net::HttpRequest request{method, target, {{"Accept", "application/json"}}, body};
  if (const auto token = token_->token()) request.headers["Authorization"] = "Bearer " + *token;
  if (!body.empty()) request.headers["Content-Type"] = content_type;
  return request;
}

net::HttpResponse KubeClient::call(const std::string& method, const std::string& target, const std::string& body,
                                   const std::string& content_type, Timeout timeout) {
  auto send = [&] {
    const net::HttpRequest request = request_for(method, target, body, content_type);
    return timeout ? http_->send_within(request, *timeout) : http_->send(request);
  };
  net::HttpResponse response = send();
  // Refused: the token may have rotated since it was last read. Once more
  // with the file's current token, if it is a different one.
  if (response.status == 401 && token_->refresh()) response = send();
  return response;
}

json KubeClient::expect_json(const std::string& method, const std::string& target, const net::HttpResponse& response) {
  json body;
  try {
    body = json::parse(response.body);
  } catch (const json::exception&) {
    throw ApiError(
        response.status, "Unparsable",
        method + " " + target + ": HTTP " + std::to_string(response.status) + " with a body that is not JSON");
  }
  if (response.status >= 300) {
    const std::string reason = body.is_object() ? body.value("reason", "") : "";
    const std::string message = body.is_object() ? body.value("message", "") : "";
    throw ApiError(response.status, reason,
                   method + " " + target + ": " + std::to_string(response.status) + " " + reason + ": " + message);
  }
  return body;
}

std::optional<json> KubeClient::get(const std::string& path, Timeout timeout) {
  const auto response = call("GET", path, "", "application/json", timeout);
  if (response.status == 404) return std::nullopt;
  return expect_json("GET", path, response);
}

json KubeClient::list(const std::string& path) { return expect_json("GET", path, call("GET", path)); }

json KubeClient::create(const std::string& collection, const json& object, Timeout timeout) {
  return expect_json("POST", collection, call("POST", collection, object.dump(), "application/json", timeout));
}

json KubeClient::replace(const std::string& path, const json& object, Timeout timeout) {
  return expect_json("PUT", path, call("PUT", path, object.dump(), "application/json", timeout));
}

json KubeClient::replace_status(const std::string& path, const json& object) {
  return expect_json("PUT", path + "/status", call("PUT", path + "/status", object.dump()));
}

json KubeClient::merge_patch(const std::string& path, const json& patch) {
  return expect_json("PATCH", path, call("PATCH", path, patch.dump(), "application/merge-patch+json"));
}

void KubeClient::remove(const std::string& path) {
  const auto response = call("DELETE", path);
  if (response.status == 404) return;  // already gone
  expect_json("DELETE", path, response);
}

std::string KubeClient::watch(const std::string& collection, const std::string& resource_version,
                              std::chrono::seconds window, const std::function<void(const WatchEvent&)>& on_event,
                              std::stop_token stop) {
  const std::string target = collection + (collection.find('?') == std::string::npos ? "?" : "&") +
                             "watch=true&allowWatchBookmarks=true&resourceVersion=" + resource_version +
                             "&timeoutSeconds=" + std::to_string(window.count());
  const net::HttpRequest request = request_for("GET", target);
  std::string last = resource_version;
  net::HttpTransport& transport = watch_http_ ? *watch_http_ : *http_;
  const auto response = transport.stream_lines(
      request,
      [&](const std::string& line) {
        if (line.empty()) return true;
        json event;
        try {
          event = json::parse(line);
        } catch (const json::exception&) {
          throw ApiError(500, "Unparsable",
                         "watch " + collection + ": a line that is not JSON: " + line.substr(0, 200));
        }
        const std::string type = event.value("type", "");
        const json& object = event.at("object");
        if (type == "ERROR") {
          throw ApiError(object.value("code", 500), object.value("reason", ""),
                         "watch " + collection + ": " + object.value("message", ""));
        }
        if (object.contains("metadata") && object["metadata"].contains("resourceVersion")) {
          last = object["metadata"]["resourceVersion"].get<std::string>();
        }
        on_event({type, object});
        return true;
      },
      stop);
  if (response.status == 401) token_->refresh();                     // the next watch sends the file's current token
  if (response.status >= 300) expect_json("GET", target, response);  // throws with the API's reason
  return last;
}

std::unique_ptr<KubeClient> make_client(const KubeConfig& config, std::chrono::seconds timeout) {
  // cpprestsdk's pool only carries the I/O (the callers wait on their own
  // threads): its default 40 threads cost more in hand-offs than they give.
  net::configure_http_threads(kHttpThreads);
  net::TlsTrust tls;
  tls.ca_file = config.ca_file;
  tls.ca_pem = config.ca_data;
  tls.verify = !config.insecure_skip_tls_verify;
  // Watches stay open for their window (up to 10 minutes here) between events.
  // Writes too on pooled connections: a create or update that cpprestsdk
  // repeats on a fresh connection answers 409 (names and resourceVersions),
  // which the controller requeues; a connection per write cost more than the write.
  return std::make_unique<KubeClient>(
      config, net::make_cpprest_transport(config.server, timeout, tls, net::PooledRequests::kAll),
      net::make_cpprest_transport(config.server, std::chrono::minutes(11), tls));
}

std::string label_selector(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) out += (out.empty() ? "" : "%2C") + k + "%3D" + v;
  return "?labelSelector=" + out;
}

}  // namespace backstop::kube

// The small HTTP client interface the exchange and Kubernetes clients share,
// with whom an https server must be certified by, so the archived cpprestsdk
// stays behind one implementation file.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <vector>

namespace backstop::net {

struct HttpRequest {
  std::string method;  // GET, POST, DELETE
  std::string target;  // path and query, e.g. /api/v3/order?symbol=...
  std::map<std::string, std::string> headers;
  std::string body;
};

struct HttpResponse {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// No HTTP answer. `maybe_sent` is false only when the request certainly did
// not reach the server (connection refused, DNS failure); a timeout after
// sending is `maybe_sent` = true: its effect is unknown.
class TransportError : public std::runtime_error {
 public:
  TransportError(const std::string& what, bool maybe_sent) : std::runtime_error(what), maybe_sent_(maybe_sent) {}
  [[nodiscard]] bool maybe_sent() const { return maybe_sent_; }

 private:
  bool maybe_sent_;
};

// One request's end when several are sent at once: a response or why there is none.
struct HttpOutcome {
  std::optional<HttpResponse> response;
  std::optional<TransportError> error;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Throws TransportError; HTTP error statuses are responses, not exceptions.
  virtual HttpResponse send(const HttpRequest& request) = 0;
  // send() with the whole exchange (connect, request, answer) bounded by
  // `timeout`, when it is shorter than the transport's own timeout: past it
  // the request is abandoned (its connection closed) and TransportError
  // (maybe_sent) thrown. E.g. a leader's Lease renewal, bounded by its renew
  // deadline. This default ignores the bound: test doubles answer at once.
  virtual HttpResponse send_within(const HttpRequest& request, std::chrono::milliseconds timeout) {
    (void)timeout;
    return send(request);
  }
  // The requests at once (each exactly as send() would send it, never resent),
  // outcomes in the same order. This default sends them one after another.
  virtual std::vector<HttpOutcome> send_all(const std::vector<HttpRequest>& requests) {
    std::vector<HttpOutcome> outcomes(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
      try {
        outcomes[i].response = send(requests[i]);
      } catch (const TransportError& e) {
        outcomes[i].error = e;
      }
    }
    return outcomes;
  }
  // A long response read as it arrives (a Kubernetes watch): each body line to
  // `on_line` until the body ends, `on_line` returns false or `stop` is
  // requested (the connection is then closed). Returns the status and headers;
  // `body` holds the whole body only for an error status (>= 300). This
  // default reads the whole body first.
  virtual HttpResponse stream_lines(const HttpRequest& request, const std::function<bool(const std::string&)>& on_line,
                                    std::stop_token stop = {}) {
    HttpResponse response = send(request);
    if (response.status >= 300) return response;
    std::size_t start = 0;
    while (start < response.body.size() && !stop.stop_requested()) {
      std::size_t end = response.body.find('\n', start);
      if (end == std::string::npos) end = response.body.size();
      if (!on_line(response.body.substr(start, end - start))) break;
      start = end + 1;
    }
    response.body.clear();
    return response;
  }
};

// Whom an https server must be certified by: the system's trust store plus a
// CA (a PEM file or PEM bytes, e.g. a Kubernetes cluster's CA), or no check at
// all (insecure, for a kubeconfig that says insecure-skip-tls-verify).
struct TlsTrust {
  std::optional<std::string> ca_file;
  std::optional<std::string> ca_pem;
  bool verify = true;
};

// Sizes cpprestsdk's process-wide thread pool (its default is 40 threads, whose
// hand-offs cost more CPU than the requests themselves: 0.58 vs 0.31 ms per
// order in bench/order_bench). Call once, before the first request; later calls
// are ignored. Nothing Backstop runs on the pool blocks, so one thread does.
void configure_http_threads(std::size_t threads);

// Which requests may go on a pooled (reused) keep-alive connection.
// cpprestsdk silently re-sends a request whose reused connection turns out to
// be closed: for an order that is a second order, so by default only GETs are
// pooled and every other request has a connection of its own. An API whose
// writes are safe to repeat (the Kubernetes API: a repeated create answers
// 409 AlreadyExists, a repeated update 409 Conflict on its resourceVersion)
// pools them all.
enum class PooledRequests { kGetsOnly, kAll };

// cpprestsdk implementation against a base URL such as https://api.binance.com.
// `timeout` bounds each wait for the server (connect, send, each read), so a
// stream that keeps delivering lines outlives it.
std::unique_ptr<HttpTransport> make_cpprest_transport(const std::string& base_url, std::chrono::milliseconds timeout,
                                                      const TlsTrust& tls = {},
                                                      PooledRequests pooled = PooledRequests::kGetsOnly);

}  // namespace backstop::net

// The small HTTP interface the exchange client needs, so the archived
// cpprestsdk stays behind one implementation file.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <memory>
#include <stdexcept>
#include <optional>
#include <string>
#include <vector>

namespace backstop::exchange {

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
};

// Sizes cpprestsdk's process-wide thread pool (its default is 40 threads, whose
// hand-offs cost more CPU than the requests themselves: 0.58 vs 0.31 ms per
// order in bench/order_bench). Call once, before the first request; later calls
// are ignored. Nothing Backstop runs on the pool blocks, so one thread does.
void configure_http_threads(std::size_t threads);

// cpprestsdk implementation against a base URL such as https://api.binance.com.
std::unique_ptr<HttpTransport> make_cpprest_transport(const std::string& base_url, std::chrono::milliseconds timeout);

}  // namespace backstop::exchange

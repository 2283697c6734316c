// cpprestsdk's HTTP client behind net::HttpTransport; cpprestsdk is included
// only here and in cpprest_websocket.cpp (its WebSocket client).
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <pplx/threadpool.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <system_error>
#include <vector>

#include "net/http.h"

namespace backstop::net {
namespace {

namespace http = web::http;

class CpprestTransport : public HttpTransport {
 public:
  CpprestTransport(const std::string& base_url, std::chrono::milliseconds timeout, const TlsTrust& tls,
                   PooledRequests pooled)
      : base_url_(base_url),
        pooled_(pooled),
        config_([&] {
          http::client::http_client_config config;
          config.set_timeout(timeout);
          config.set_validate_certificates(tls.verify);
          std::string pem = tls.ca_pem.value_or("");
          if (tls.ca_file) {
            std::ifstream in(*tls.ca_file);
            if (!in) throw std::runtime_error("cannot read the CA file " + *tls.ca_file);
            std::ostringstream bytes;
            bytes << in.rdbuf();
            pem += "\n" + bytes.str();
          }
          if (!pem.empty()) {
            // In addition to the system store (cpprest sets the default paths first).
            config.set_ssl_context_callback([pem](boost::asio::ssl::context& context) {
              context.add_certificate_authority(boost::asio::buffer(pem.data(), pem.size()));
            });
          }
          return config;
        }()),
        client_(base_url_, config_) {}

  HttpResponse send(const HttpRequest& request) override {
    if (pooled(request)) return finish(request, client_.request(message_for(request)));
    // cpprestsdk silently re-sends a request whose pooled (reused) connection
    // turns out to be closed (handle_failed_read_status_line). For an order that
    // is a second order. Non-GET requests therefore get a client of their own, so
    // their connection is never a reused one, and they ask the server to close it.
    http::client::http_client one_shot(base_url_, config_);
    return finish(request, one_shot.request(message_for(closing(request))));
  }

  HttpResponse send_within(const HttpRequest& request, std::chrono::milliseconds timeout) override {
    // cpprestsdk's timeout is per client and restarts with every read; this
    // one is a deadline for the whole exchange: cancelling the request closes
    // its connection under a pending connect, write or read.
    Deadline deadline{std::chrono::steady_clock::now() + timeout, timeout, {}};
    if (pooled(request)) {
      return finish(request, client_.request(message_for(request), deadline.cancel.get_token()), &deadline);
    }
    http::client::http_client one_shot(base_url_, config_);  // as send() does
    return finish(request, one_shot.request(message_for(closing(request)), deadline.cancel.get_token()), &deadline);
  }

  std::vector<HttpOutcome> send_all(const std::vector<HttpRequest>& requests) override {
    // Every request on a connection of its own (as send() does for non-GET
    // ones), all in flight together; the clients live until every answer is in.
    std::vector<std::unique_ptr<http::client::http_client>> clients;
    std::vector<pplx::task<http::http_response>> pending;
    for (const HttpRequest& request : requests) {
      clients.push_back(std::make_unique<http::client::http_client>(base_url_, config_));
      pending.push_back(clients.back()->request(message_for(closing(request))));
    }
    std::vector<HttpOutcome> outcomes(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
      try {
        outcomes[i].response = finish(requests[i], std::move(pending[i]));
      } catch (const TransportError& e) {
        outcomes[i].error = e;
      }
    }
    return outcomes;
  }

  HttpResponse stream_lines(const HttpRequest& request, const std::function<bool(const std::string&)>& on_line,
                            std::stop_token stop) override {
    // A connection of its own, closed with the stream; a stop request cancels
    // the request, which closes the socket under a pending read.
    pplx::cancellation_token_source cancel;
    std::stop_callback on_stop(stop, [&cancel] { cancel.cancel(); });
    http::client::http_client client(base_url_, config_);
    HttpResponse out;
    std::exception_ptr from_caller;  // what on_line threw: the caller's, passed on as it is
    try {
      http::http_response response = client.request(message_for(request), cancel.get_token()).get();
      out.status = response.status_code();
      copy_headers(response, out);
      if (out.status >= 300) {
        out.body = response.extract_string(true).get();
        return out;
      }
      // Read what has arrived and split the lines here: the stream's read_line
      // takes a lock (and may hand over to another thread) per character,
      // which cost more CPU than the rest of the controller on a busy watch.
      auto body = response.body();
      auto buffer = body.streambuf();
      std::string pending;
      std::vector<unsigned char> chunk(64 * 1024);
      bool eof = false;
      while (!stop.stop_requested() && !from_caller) {
        // getn completes when it has all it asked for: what is there, or else
        // one byte (0: the end of the stream).
        const std::size_t available = buffer.in_avail();
        const std::size_t n =
            buffer.getn(chunk.data(), available > 0 ? std::min(available, chunk.size()) : std::size_t{1}).get();
        if (n == 0) {
          eof = true;
          if (!pending.empty()) {
            try {
              on_line(pending);
            } catch (...) {
              from_caller = std::current_exception();
            }
          }
          break;
        }
        pending.append(reinterpret_cast<const char*>(chunk.data()), n);
        bool more = true;
        std::size_t start = 0;
        for (std::size_t nl; more && (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
          const std::size_t end = nl > start && pending[nl - 1] == '\r' ? nl - 1 : nl;
          if (end == start) continue;
          try {
            more = on_line(pending.substr(start, end - start));
          } catch (...) {
            from_caller = std::current_exception();
            more = false;
          }
        }
        pending.erase(0, start);
        if (!more) break;
      }
      if (!eof) cancel.cancel();  // left early: close the connection
      if (!from_caller) return out;
    } catch (const std::exception& e) {
      if (stop.stop_requested()) return out;  // closed on purpose
      throw TransportError(describe(request) + (out.status != 0 ? ": stream broken: " : ": ") + e.what(), true);
    }
    std::rethrow_exception(from_caller);
  }

 private:
  [[nodiscard]] bool pooled(const HttpRequest& request) const {
    return pooled_ == PooledRequests::kAll || request.method == "GET";
  }

  static void copy_headers(const http::http_response& response, HttpResponse& out) {
    for (const auto& [name, value] : response.headers()) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[lower] = value;
    }
  }

  static HttpRequest closing(const HttpRequest& request) {
    HttpRequest copy = request;
    copy.headers["Connection"] = "close";
    return copy;
  }

  static http::http_request message_for(const HttpRequest& request) {
    http::http_request message(request.method);
    message.set_request_uri(request.target);
    std::string content_type = "application/x-www-form-urlencoded";
    for (const auto& [name, value] : request.headers) {
      if (name == "Content-Type") {
        content_type = value;
      } else {
        message.headers().add(name, value);
      }
    }
    if (!request.body.empty()) message.set_body(request.body, content_type);
    return message;
  }

  struct Deadline {
    std::chrono::steady_clock::time_point at;
    std::chrono::milliseconds budget;
    pplx::cancellation_token_source cancel;  // the request's
  };

  // Waits for `task` until the deadline; past it, cancels the request and
  // waits for the task to end (it then fails at once). False if it was late.
  template <typename T>
  static bool ended_in_time(const pplx::task<T>& task, Deadline& deadline) {
    struct Signal {
      std::mutex mutex;
      std::condition_variable ended;
      bool done = false;
    };
    auto signal = std::make_shared<Signal>();
    // The continuation only signals; the caller's .get() observes the result.
    task.then([signal](pplx::task<T>) {
      const std::lock_guard lock(signal->mutex);
      signal->done = true;
      signal->ended.notify_all();
    });
    std::unique_lock lock(signal->mutex);
    if (signal->ended.wait_until(lock, deadline.at, [&] { return signal->done; })) return true;
    lock.unlock();
    deadline.cancel.cancel();
    lock.lock();
    signal->ended.wait(lock, [&] { return signal->done; });
    return false;
  }

  // Waits for the answer (by the deadline, if any); throws TransportError when there is none.
  static HttpResponse finish(const HttpRequest& request, pplx::task<http::http_response> task,
                             Deadline* deadline = nullptr) {
    const auto late = [&] {
      return TransportError(
          describe(request) + ": no answer within " + std::to_string(deadline->budget.count()) + " ms", true);
    };
    try {
      if (deadline != nullptr && !ended_in_time(task, *deadline)) {
        try {
          task.get();  // observed: an unobserved exception would terminate
        } catch (const std::exception&) {
        }
        throw late();
      }
      // .get() observes the task's exception: an unobserved one would terminate.
      http::http_response response = task.get();
      HttpResponse out;
      out.status = response.status_code();
      copy_headers(response, out);
      pplx::task<std::string> body = response.extract_string(true);
      if (deadline != nullptr && !ended_in_time(body, *deadline)) {
        try {
          body.get();
        } catch (const std::exception&) {
        }
        throw late();
      }
      out.body = body.get();
      return out;
    } catch (const TransportError&) {
      throw;
    } catch (const http::http_exception& e) {
      // Refused / unresolvable: nothing was sent. Anything else (timeout, reset) may have been.
      const auto code = e.error_code();
      const bool not_sent = code == std::errc::connection_refused || code == std::errc::host_unreachable ||
                            code == std::errc::network_unreachable ||
                            std::string(e.what()).find("resolve") != std::string::npos;
      throw TransportError(describe(request) + ": " + e.what(), !not_sent);
    } catch (const std::exception& e) {
      // Anything else in the middle of an exchange: it may have been sent.
      throw TransportError(describe(request) + ": " + e.what(), true);
    }
  }

  static std::string describe(const HttpRequest& request) {
    return "HTTP " + request.method + " " + request.target.substr(0, request.target.find('?'));
  }

  std::string base_url_;
  PooledRequests pooled_;
  http::client::http_client_config config_;
  http::client::http_client client_;
};

}  // namespace

void configure_http_threads(std::size_t threads) {
  static std::once_flag once;
  std::call_once(once, [threads] {
    try {
      crossplat::threadpool::initialize_with_threads(threads);
    } catch (const std::exception&) {
      // Already initialized by an earlier request: keep what is there.
    }
  });
}

std::unique_ptr<HttpTransport> make_cpprest_transport(const std::string& base_url, std::chrono::milliseconds timeout,
                                                      const TlsTrust& tls, PooledRequests pooled) {
  return std::make_unique<CpprestTransport>(base_url, timeout, tls, pooled);
}

}  // namespace backstop::net

// The only file that includes cpprestsdk.
#include <cpprest/http_client.h>

#include <system_error>

#include "exchange/http.h"

namespace backstop::exchange {
namespace {

namespace http = web::http;

class CpprestTransport : public HttpTransport {
 public:
  CpprestTransport(const std::string& base_url, std::chrono::milliseconds timeout)
      : client_(base_url, [&] {
          http::client::http_client_config config;
          config.set_timeout(timeout);
          return config;
        }()) {}

  HttpResponse send(const HttpRequest& request) override {
    http::http_request message(request.method);
    message.set_request_uri(request.target);
    for (const auto& [name, value] : request.headers) message.headers().add(name, value);
    if (!request.body.empty()) message.set_body(request.body, "application/x-www-form-urlencoded");
    try {
      // .get() observes the task's exception: an unobserved one would terminate.
      http::http_response response = client_.request(message).get();
      HttpResponse out;
      out.status = response.status_code();
      for (const auto& [name, value] : response.headers()) {
        std::string lower = name;
        for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        out.headers[lower] = value;
      }
      out.body = response.extract_string(true).get();
      return out;
    } catch (const http::http_exception& e) {
      // Refused / unresolvable: nothing was sent. Anything else (timeout, reset) may have been.
      const auto code = e.error_code();
      const bool not_sent = code == std::errc::connection_refused || code == std::errc::host_unreachable ||
                            code == std::errc::network_unreachable ||
                            std::string(e.what()).find("resolve") != std::string::npos;
      throw TransportError(std::string("HTTP ") + request.method + " " + request.target.substr(0, request.target.find('?')) +
                               ": " + e.what(),
                           !not_sent);
    }
  }

 private:
  http::client::http_client client_;
};

}  // namespace

std::unique_ptr<HttpTransport> make_cpprest_transport(const std::string& base_url, std::chrono::milliseconds timeout) {
  return std::make_unique<CpprestTransport>(base_url, timeout);
}

}  // namespace backstop::exchange

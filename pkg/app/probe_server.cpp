#include "app/probe_server.h"

#include <httplib.h>

#include <stdexcept>

#include "runtime/exit_code.h"

namespace backstop::app {
namespace {

std::pair<std::string, int> host_port(const std::string& bind, const char* flag) {
  const auto colon = bind.rfind(':');
  try {
    if (colon == std::string::npos) throw std::invalid_argument("no port");
    return {bind.substr(0, colon).empty() ? "0.0.0.0" : bind.substr(0, colon), std::stoi(bind.substr(colon + 1))};
  } catch (const std::exception&) {
    throw runtime::UsageError(std::string(flag) + ": expected HOST:PORT, got '" + bind + "'");
  }
}

}  // namespace

int bind_server(httplib::Server& server, const std::string& bind, const char* flag) {
  const auto [host, port] = host_port(bind, flag);
  const int bound = port == 0 ? server.bind_to_any_port(host) : (server.bind_to_port(host, port) ? port : -1);
  if (bound < 0) throw runtime::UsageError(std::string(flag) + " " + bind + ": cannot listen");
  return bound;
}

ProbeServer::ProbeServer(const std::string& bind, const char* flag, const runtime::Health& health)
    : server_(std::make_unique<httplib::Server>()) {
  const auto serve = [](httplib::Response& res, const runtime::Health::Answer& answer) {
    res.status = answer.ok ? 200 : 503;
    res.set_content(answer.body, "application/json");
  };
  server_->Get("/healthz",
               [&health, serve](const httplib::Request&, httplib::Response& res) { serve(res, health.live()); });
  server_->Get("/readyz",
               [&health, serve](const httplib::Request&, httplib::Response& res) { serve(res, health.ready()); });
  port_ = bind_server(*server_, bind, flag);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

ProbeServer::~ProbeServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace backstop::app

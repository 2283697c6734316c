// Compiled as C++17 (see ws_streams.h).
#include "ws_streams.h"

#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

namespace backstop::sim {

using WsServer = websocketpp::server<websocketpp::config::asio>;

struct WsStreams::State {
  WsServer server;
  std::mutex mutex;
  struct Subscription {
    std::set<std::string> streams;
    bool combined = false;
    bool api = false;                                  // a /ws-api/v3 connection
    std::map<std::string, std::int64_t> user_streams;  // API key -> subscriptionId
    std::int64_t next_subscription_id = 0;
  };
  ApiHandler api;
  bool silent = false;
  std::map<websocketpp::connection_hdl, Subscription, std::owner_less<websocketpp::connection_hdl>> subscribers;
  std::thread thread;
  bool running = false;
};

WsStreams::WsStreams() : state_(std::make_unique<State>()) {}

WsStreams::~WsStreams() { stop(); }

int WsStreams::start(const std::string& host, int port, ApiHandler api) {
  State& s = *state_;
  s.api = std::move(api);
  s.server.clear_access_channels(websocketpp::log::alevel::all);
  s.server.clear_error_channels(websocketpp::log::elevel::all);
  s.server.init_asio();
  s.server.set_reuse_addr(true);
  // No Nagle delay, as exchanges' stream servers do: a tick sent while the
  // previous one is unacknowledged would otherwise wait for the client's delayed
  // ACK (up to 40 ms on Linux), a latency the exchange does not have.
  s.server.set_socket_init_handler([](websocketpp::connection_hdl, websocketpp::lib::asio::ip::tcp::socket& socket) {
    websocketpp::lib::asio::error_code ignored;
    socket.set_option(websocketpp::lib::asio::ip::tcp::no_delay(true), ignored);
  });
  s.server.set_open_handler([&s](websocketpp::connection_hdl hdl) {
    const std::string resource = s.server.get_con_from_hdl(hdl)->get_resource();
    State::Subscription sub;
    std::string list;
    if (resource.rfind("/ws-api/v3", 0) == 0) {
      sub.api = true;
    } else if (resource.rfind("/ws/", 0) == 0) {
      list = resource.substr(4);
    } else if (const auto at = resource.find("streams="); at != std::string::npos) {
      list = resource.substr(at + 8);
      sub.combined = true;
    }
    std::size_t start = 0;
    while (start <= list.size()) {
      const auto end = list.find('/', start);
      const std::string stream = list.substr(start, end == std::string::npos ? std::string::npos : end - start);
      if (!stream.empty()) sub.streams.insert(stream);
      if (end == std::string::npos) break;
      start = end + 1;
    }
    std::lock_guard<std::mutex> lock(s.mutex);
    s.subscribers[hdl] = sub;
  });
  s.server.set_message_handler([&s](websocketpp::connection_hdl hdl, WsServer::message_ptr message) {
    std::int64_t id = 0;
    {
      std::lock_guard<std::mutex> lock(s.mutex);
      const auto it = s.subscribers.find(hdl);
      if (it == s.subscribers.end() || !it->second.api) return;  // the market streams take no requests
      id = it->second.next_subscription_id;
    }
    ApiReply reply = s.api(message->get_payload(), id);
    std::lock_guard<std::mutex> lock(s.mutex);
    const auto it = s.subscribers.find(hdl);
    if (it == s.subscribers.end()) return;
    if (s.silent) return;  // a connection dead without closing answers nothing either
    if (!reply.subscribed_key.empty()) {
      // One subscription per account and connection, as Binance keeps it.
      if (it->second.user_streams.count(reply.subscribed_key) != 0) {
        const nlohmann::json answered = nlohmann::json::parse(reply.text);
        reply.text =
            nlohmann::json{{"id", answered.at("id")},
                           {"status", 400},
                           {"error", {{"code", -2035}, {"msg", "User Data Stream subscription already active."}}}}
                .dump();
      } else {
        it->second.user_streams[reply.subscribed_key] = id;
        ++it->second.next_subscription_id;
      }
    }
    websocketpp::lib::error_code ec;
    s.server.send(hdl, reply.text, websocketpp::frame::opcode::text, ec);
  });
  s.server.set_close_handler([&s](websocketpp::connection_hdl hdl) {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.subscribers.erase(hdl);
  });
  websocketpp::lib::error_code ec;
  s.server.listen(websocketpp::lib::asio::ip::tcp::endpoint(websocketpp::lib::asio::ip::address::from_string(host),
                                                            static_cast<unsigned short>(port)),
                  ec);
  if (ec) return -1;
  s.server.start_accept(ec);
  if (ec) return -1;
  websocketpp::lib::asio::error_code asio_ec;
  const int bound = s.server.get_local_endpoint(asio_ec).port();
  if (asio_ec) return -1;
  s.thread = std::thread([&s] { s.server.run(); });
  s.running = true;
  return bound;
}

void WsStreams::publish(const std::string& lower_symbol, const std::string& trade_json, const std::string& book_json) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  for (const auto& [hdl, sub] : s.subscribers) {
    for (const auto& [stream, data] :
         {std::pair<std::string, const std::string*>{lower_symbol + "@trade", &trade_json},
          std::pair<std::string, const std::string*>{lower_symbol + "@bookTicker", &book_json}}) {
      if (sub.streams.count(stream) == 0) continue;
      const std::string message = sub.combined ? "{\"stream\":\"" + stream + "\",\"data\":" + *data + "}" : *data;
      websocketpp::lib::error_code ec;
      s.server.send(hdl, message, websocketpp::frame::opcode::text, ec);  // a client that left is not an error
    }
  }
}

void WsStreams::publish_account(const std::string& api_key, const std::string& event_json) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.silent) return;
  for (const auto& [hdl, sub] : s.subscribers) {
    const auto it = sub.user_streams.find(api_key);
    if (it == sub.user_streams.end()) continue;
    const std::string message = "{\"subscriptionId\":" + std::to_string(it->second) + ",\"event\":" + event_json + "}";
    websocketpp::lib::error_code ec;
    s.server.send(hdl, message, websocketpp::frame::opcode::text, ec);
  }
}

bool WsStreams::user_stream_fault(const std::string& action) {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  websocketpp::lib::error_code ec;
  if (action == "silence") {
    s.silent = true;
  } else if (action == "resume") {
    s.silent = false;
  } else if (action == "disconnect") {
    for (const auto& [hdl, sub] : s.subscribers) {
      if (sub.api) s.server.close(hdl, websocketpp::close::status::going_away, "", ec);
    }
  } else if (action == "terminate") {
    const auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    for (auto& [hdl, sub] : s.subscribers) {
      for (const auto& [key, id] : sub.user_streams) {
        const std::string message = "{\"subscriptionId\":" + std::to_string(id) +
                                    ",\"event\":{\"e\":\"eventStreamTerminated\",\"E\":" + std::to_string(now) + "}}";
        s.server.send(hdl, message, websocketpp::frame::opcode::text, ec);
      }
      sub.user_streams.clear();
    }
  } else {
    return false;
  }
  return true;
}

int WsStreams::user_stream_subscriptions() {
  State& s = *state_;
  std::lock_guard<std::mutex> lock(s.mutex);
  int n = 0;
  for (const auto& [hdl, sub] : s.subscribers) n += static_cast<int>(sub.user_streams.size());
  return n;
}

void WsStreams::stop() {
  State& s = *state_;
  if (!s.running) return;
  websocketpp::lib::error_code ec;
  s.server.stop_listening(ec);
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    for (const auto& [hdl, sub] : s.subscribers) s.server.close(hdl, websocketpp::close::status::going_away, "", ec);
  }
  s.server.stop();
  if (s.thread.joinable()) s.thread.join();
  s.running = false;
}

}  // namespace backstop::sim

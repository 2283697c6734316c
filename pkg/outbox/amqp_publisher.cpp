#include "outbox/amqp_publisher.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sys/time.h>

#include <map>
#include <set>

#include "runtime/log.h"

namespace backstop::outbox {
namespace {

constexpr amqp_channel_t kChannel = 1;

amqp_bytes_t bytes(const std::string& s) { return amqp_bytes_t{s.size(), const_cast<char*>(s.data())}; }
std::string text(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

std::string describe(const amqp_rpc_reply_t& reply) {
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return "ok";
    case AMQP_RESPONSE_NONE:
      return "no reply (missing RPC reply type)";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      return amqp_error_string2(reply.library_error);
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
        return "connection closed by the broker: " + std::to_string(m->reply_code) + " " + text(m->reply_text);
      }
      if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        const auto* m = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
        return "channel closed by the broker: " + std::to_string(m->reply_code) + " " + text(m->reply_text);
      }
      return "broker error (method " + std::to_string(reply.reply.id) + ")";
  }
  return "unknown reply";
}

// The broker's reply code when it closed the connection or the channel (0 otherwise).
int closing_code(const amqp_rpc_reply_t& reply, amqp_method_number_t method) {
  if (reply.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || reply.reply.id != method) return 0;
  if (method == AMQP_CONNECTION_CLOSE_METHOD)
    return static_cast<amqp_connection_close_t*>(reply.reply.decoded)->reply_code;
  return static_cast<amqp_channel_close_t*>(reply.reply.decoded)->reply_code;
}

constexpr int kAccessRefused = 403;
constexpr int kPreconditionFailed = 406;
constexpr int kNotAllowed = 530;

// The parsed URL (its strings point into `buffer`); throws BrokerConfigError.
amqp_connection_info parse(const std::string& url, std::vector<char>& buffer) {
  buffer.assign(url.begin(), url.end());
  buffer.push_back('\0');
  amqp_connection_info info{};
  amqp_default_connection_info(&info);
  if (amqp_parse_url(buffer.data(), &info) != AMQP_STATUS_OK) {
    throw BrokerConfigError("invalid AMQP URL '" + log::redact_secrets(url) +
                            "': expected amqp://user:password@host:port/vhost (--amqp-url, BACKSTOP_AMQP_URL)");
  }
  if (info.ssl) throw BrokerConfigError("amqps:// is not supported by this build; use amqp:// inside the cluster");
  return info;
}

}  // namespace

std::string redact_url(const std::string& url) { return log::redact_secrets(url); }

void check_broker_config(const BrokerConfig& config) {
  std::vector<char> buffer;
  parse(config.url, buffer);
}

struct AmqpPublisher::State {
  BrokerConfig config;
  amqp_connection_state_t conn = nullptr;
  bool open = false;
  std::uint64_t next_tag = 1;  // delivery tags of the confirm-mode channel
  std::set<std::string> declared;
  std::map<std::uint64_t, PublishOutcome> pending;   // sent, not answered yet, by delivery tag
  std::map<std::uint64_t, PublishOutcome> answered;  // answered, not collected by wait() yet
  std::map<std::string, std::uint64_t> tag_of_id;    // message id -> tag, to place a basic.return

  void check(const amqp_rpc_reply_t& reply, const std::string& what) const {
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
      throw BrokerError(what + " failed on " + redact_url(config.url) + ": " + describe(reply));
    }
  }
  void check_last(const std::string& what) const { check(amqp_get_rpc_reply(conn), what); }
};

AmqpPublisher::AmqpPublisher(BrokerConfig config) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.config = std::move(config);
  std::vector<char> url;
  const amqp_connection_info info = parse(s.config.url, url);
  // "amqp://host:5672/" parses to the vhost "", which cannot exist: RabbitMQ's
  // default vhost "/" is meant (spelled %2f in a URL).
  const std::string vhost = (info.vhost == nullptr || *info.vhost == '\0') ? "/" : info.vhost;
  const std::string user = s.config.user.value_or(info.user);
  const std::string password = s.config.password.value_or(info.password);
  s.conn = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(s.conn);
  if (socket == nullptr) throw BrokerError("cannot create a TCP socket for AMQP");
  timeval timeout = to_timeval(s.config.timeout);
  const int status = amqp_socket_open_noblock(socket, info.host, info.port, &timeout);
  if (status != AMQP_STATUS_OK) {
    amqp_destroy_connection(s.conn);
    s.conn = nullptr;
    throw BrokerError("cannot connect to RabbitMQ at " + redact_url(s.config.url) + ": " + amqp_error_string2(status));
  }
  amqp_set_rpc_timeout(s.conn, &timeout);
  amqp_set_handshake_timeout(s.conn, &timeout);
  try {
    const amqp_rpc_reply_t login = amqp_login(s.conn, vhost.c_str(), 0, 131072, s.config.heartbeat_seconds,
                                              AMQP_SASL_METHOD_PLAIN, user.c_str(), password.c_str());
    // The broker answered and refused: the user, the password or the vhost is wrong.
    const int refusal = closing_code(login, AMQP_CONNECTION_CLOSE_METHOD);
    if (refusal == kAccessRefused || refusal == kNotAllowed) {
      throw BrokerConfigError("RabbitMQ at " + redact_url(s.config.url) + " refused user '" + user + "' on vhost '" +
                              vhost + "': " + describe(login) + "; check the " +
                              (refusal == kAccessRefused
                                   ? "user and password (--amqp-url, BACKSTOP_AMQP_USER, BACKSTOP_AMQP_PASSWORD)"
                                   : "vhost of --amqp-url and the user's permissions on it"));
    }
    s.check(login, "AMQP login");
    amqp_channel_open(s.conn, kChannel);
    s.check_last("opening the AMQP channel");
    amqp_confirm_select(s.conn, kChannel);
    s.check_last("confirm.select");
  } catch (...) {
    amqp_destroy_connection(s.conn);
    s.conn = nullptr;
    throw;
  }
  s.open = true;
}

AmqpPublisher::~AmqpPublisher() {
  if (state_->conn == nullptr) return;
  if (state_->open) {
    amqp_channel_close(state_->conn, kChannel, AMQP_REPLY_SUCCESS);
    amqp_connection_close(state_->conn, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(state_->conn);
}

void AmqpPublisher::declare_exchange(const std::string& name) {
  State& s = *state_;
  if (s.declared.count(name) != 0) return;
  amqp_exchange_declare(s.conn, kChannel, bytes(name), amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
  const amqp_rpc_reply_t reply = amqp_get_rpc_reply(s.conn);
  const int refusal = closing_code(reply, AMQP_CHANNEL_CLOSE_METHOD);
  if (refusal == kAccessRefused || refusal == kPreconditionFailed) {
    s.open = false;  // the channel is closed: the destructor closes only the connection
    throw BrokerConfigError("RabbitMQ at " + redact_url(s.config.url) +
                            " will not declare the durable topic exchange '" + name +
                            "' (--exchange): " + describe(reply));
  }
  s.check(reply, "declaring exchange '" + name + "'");
  s.declared.insert(name);
}

AmqpPublisher::Ticket AmqpPublisher::send(const std::vector<Message>& messages, bool mandatory) {
  State& s = *state_;
  static const std::string kContentType = "application/json";
  Ticket ticket{s.next_tag, messages.size()};
  for (const Message& m : messages) {
    amqp_basic_properties_t props{};
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                   AMQP_BASIC_TIMESTAMP_FLAG;
    props.content_type = bytes(kContentType);
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props.message_id = bytes(m.message_id);
    props.timestamp = static_cast<std::uint64_t>(m.timestamp);
    const int rc = amqp_basic_publish(s.conn, kChannel, bytes(m.exchange), bytes(m.routing_key), mandatory ? 1 : 0, 0,
                                      &props, bytes(m.body));
    if (rc != AMQP_STATUS_OK) {
      s.open = false;
      throw BrokerError(std::string("publishing failed: ") + amqp_error_string2(rc));
    }
    s.tag_of_id[m.message_id] = s.next_tag;
    s.pending.emplace(s.next_tag++, PublishOutcome{});
  }
  return ticket;
}

std::vector<PublishOutcome> AmqpPublisher::wait(const Ticket& ticket) {
  State& s = *state_;
  const std::uint64_t end = ticket.first_tag + ticket.count;
  auto settle = [&](std::uint64_t tag, bool multiple, bool ack) {
    // Every pending tag up to `tag` (multiple) or exactly `tag`.
    auto it = multiple ? s.pending.begin() : s.pending.find(tag);
    while (it != s.pending.end() && it->first <= tag) {
      PublishOutcome& o = it->second;
      if (!ack) {
        o.error = "nack: the broker could not take the message";
      } else if (o.error.empty()) {
        o.delivered = true;
      }
      s.answered.insert(s.answered.end(), *it);
      it = s.pending.erase(it);
      if (!multiple) break;
    }
  };
  auto unanswered = [&] {
    const auto it = s.pending.lower_bound(ticket.first_tag);
    return it != s.pending.end() && it->first < end;
  };
  while (unanswered()) {
    amqp_frame_t frame;
    timeval timeout = to_timeval(s.config.timeout);
    const int rc = amqp_simple_wait_frame_noblock(s.conn, &frame, &timeout);
    if (rc != AMQP_STATUS_OK) {
      s.open = false;
      throw BrokerError(rc == AMQP_STATUS_TIMEOUT
                            ? "no publisher confirm within " + std::to_string(s.config.timeout.count()) + " ms"
                            : std::string("waiting for publisher confirms failed: ") + amqp_error_string2(rc));
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        const auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
        settle(ack->delivery_tag, ack->multiple != 0, true);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        const auto* nack = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
        settle(nack->delivery_tag, nack->multiple != 0, false);
        break;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        // Unroutable: the message comes back (header + body), then its ack.
        const auto* ret = static_cast<amqp_basic_return_t*>(frame.payload.method.decoded);
        const std::string why = "returned: " + std::to_string(ret->reply_code) + " " + text(ret->reply_text) +
                                " (no queue bound for routing key '" + text(ret->routing_key) + "')";
        amqp_message_t returned;
        const amqp_rpc_reply_t r = amqp_read_message(s.conn, frame.channel, &returned, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
          s.open = false;
          throw BrokerError("reading a returned message failed: " + describe(r));
        }
        if ((returned.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) != 0) {
          const auto tag = s.tag_of_id.find(text(returned.properties.message_id));
          if (tag != s.tag_of_id.end()) {
            if (const auto it = s.pending.find(tag->second); it != s.pending.end()) it->second.error = why;
          }
        }
        amqp_destroy_message(&returned);
        break;
      }
      case AMQP_CHANNEL_CLOSE_METHOD: {
        const auto* close = static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
        const std::string why = std::to_string(close->reply_code) + " " + text(close->reply_text);
        amqp_channel_close_ok_t ok{};
        amqp_send_method(s.conn, kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
        s.open = false;
        throw BrokerError("the broker closed the channel: " + why);
      }
      case AMQP_CONNECTION_CLOSE_METHOD: {
        const auto* close = static_cast<amqp_connection_close_t*>(frame.payload.method.decoded);
        s.open = false;
        throw BrokerError("the broker closed the connection: " + std::to_string(close->reply_code) + " " +
                          text(close->reply_text));
      }
      default:
        break;
    }
    amqp_maybe_release_buffers(s.conn);
  }
  std::vector<PublishOutcome> outcomes;
  outcomes.reserve(ticket.count);
  for (std::uint64_t tag = ticket.first_tag; tag < end; ++tag) {
    const auto it = s.answered.find(tag);
    outcomes.push_back(it->second);
    s.answered.erase(it);
  }
  for (auto it = s.tag_of_id.begin(); it != s.tag_of_id.end();) {
    it = it->second >= ticket.first_tag && it->second < end ? s.tag_of_id.erase(it) : std::next(it);
  }
  return outcomes;
}

}  // namespace backstop::outbox

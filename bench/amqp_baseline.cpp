// P3's baseline: a plain rabbitmq-c loop publishing the same payloads with the
// same properties and publisher confirms per batch (no database, no bookkeeping).
//
//   amqp_baseline URL EXCHANGE FILE BATCH [--declare-queue NAME]
// FILE: one message per line, "routing_key<TAB>json". Prints "messages seconds".
// With --declare-queue it declares the durable topic exchange and a durable
// queue bound to stop.# (so that mandatory messages are routable), purges the
// queue and exits.
#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

amqp_bytes_t bytes(const std::string& s) { return amqp_bytes_t{s.size(), const_cast<char*>(s.data())}; }

void check(const amqp_rpc_reply_t& r, const char* what) {
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    std::fprintf(stderr, "%s failed\n", what);
    std::exit(1);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: amqp_baseline URL EXCHANGE FILE BATCH [--declare-queue NAME]\n");
    return 2;
  }
  std::vector<char> url(argv[1], argv[1] + std::strlen(argv[1]) + 1);
  const std::string exchange = argv[2];
  const std::size_t batch = std::stoul(argv[4]);
  amqp_connection_info info{};
  amqp_parse_url(url.data(), &info);
  amqp_connection_state_t conn = amqp_new_connection();
  amqp_socket_t* socket = amqp_tcp_socket_new(conn);
  if (amqp_socket_open(socket, info.host, info.port) != AMQP_STATUS_OK) return 3;
  check(
      amqp_login(conn, *info.vhost ? info.vhost : "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user, info.password),
      "login");
  amqp_channel_open(conn, 1);
  check(amqp_get_rpc_reply(conn), "channel.open");
  if (argc >= 7 && std::string(argv[5]) == "--declare-queue") {
    const std::string queue = argv[6];
    amqp_exchange_declare(conn, 1, bytes(exchange), amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(conn), "exchange.declare");
    amqp_queue_declare(conn, 1, bytes(queue), 0, 1, 0, 0, amqp_empty_table);
    check(amqp_get_rpc_reply(conn), "queue.declare");
    amqp_queue_bind(conn, 1, bytes(queue), bytes(exchange), amqp_cstring_bytes("stop.#"), amqp_empty_table);
    check(amqp_get_rpc_reply(conn), "queue.bind");
    amqp_queue_purge(conn, 1, bytes(queue));
    check(amqp_get_rpc_reply(conn), "queue.purge");
    return 0;
  }
  amqp_confirm_select(conn, 1);
  check(amqp_get_rpc_reply(conn), "confirm.select");

  std::vector<std::pair<std::string, std::string>> messages;  // routing key, body
  std::ifstream in(argv[3]);
  for (std::string line; std::getline(in, line);) {
    const auto tab = line.find('\t');
    messages.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  const std::string content_type = "application/json";
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t tag = 0;
  for (std::size_t at = 0; at < messages.size(); at += batch) {
    const std::size_t end = std::min(messages.size(), at + batch);
    for (std::size_t i = at; i < end; ++i) {
      const std::string id = std::to_string(i);
      amqp_basic_properties_t props{};
      props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
                     AMQP_BASIC_TIMESTAMP_FLAG;
      props.content_type = bytes(content_type);
      props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
      props.message_id = bytes(id);
      props.timestamp = 0;
      if (amqp_basic_publish(conn, 1, bytes(exchange), bytes(messages[i].first), 1, 0, &props,
                             bytes(messages[i].second)) != AMQP_STATUS_OK) {
        return 4;
      }
      ++tag;
    }
    // Wait for this batch's confirms (acks may be single or "multiple").
    const std::uint64_t first = tag - (end - at) + 1;
    std::vector<char> done(end - at, 0);
    std::size_t remaining = end - at;
    while (remaining > 0) {
      amqp_frame_t frame;
      if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) return 5;
      if (frame.frame_type != AMQP_FRAME_METHOD) continue;
      if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
        const auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
        for (std::uint64_t t = ack->multiple ? first : ack->delivery_tag; t <= ack->delivery_tag; ++t) {
          if (t >= first && !done[t - first]) {
            done[t - first] = 1;
            --remaining;
          }
        }
      } else if (frame.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
        amqp_message_t returned;
        amqp_read_message(conn, frame.channel, &returned, 0);
        amqp_destroy_message(&returned);
      }
      amqp_maybe_release_buffers(conn);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%zu %.3f\n", messages.size(), seconds);
  amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
  amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(conn);
  return 0;
}

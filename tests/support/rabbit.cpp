#include "support/rabbit.h"

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "support/process.h"

namespace backstop::testing {
namespace {

bool accepts(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return ok;
}

amqp_bytes_t bytes(const std::string& s) { return amqp_bytes_t{s.size(), const_cast<char*>(s.data())}; }
std::string text(amqp_bytes_t b) { return std::string(static_cast<const char*>(b.bytes), b.len); }

struct Connection {
  amqp_connection_state_t conn = amqp_new_connection();
  explicit Connection(const std::string& url) {
    std::vector<char> buffer(url.begin(), url.end());
    buffer.push_back('\0');
    amqp_connection_info info{};
    amqp_parse_url(buffer.data(), &info);
    amqp_socket_t* socket = amqp_tcp_socket_new(conn);
    if (amqp_socket_open(socket, info.host, info.port) != AMQP_STATUS_OK)
      throw std::runtime_error("no broker at " + url);
    const std::string vhost = *info.vhost == '\0' ? "/" : info.vhost;
    check(amqp_login(conn, vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, info.user, info.password), "login");
    amqp_channel_open(conn, 1);
    check(amqp_get_rpc_reply(conn), "channel.open");
  }
  ~Connection() {
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
  }
  static void check(const amqp_rpc_reply_t& r, const char* what) {
    if (r.reply_type != AMQP_RESPONSE_NORMAL) throw std::runtime_error(std::string("AMQP ") + what + " failed");
  }
};

}  // namespace

RabbitNode::RabbitNode() {
  char pattern[] = "/tmp/backstop-rabbit.XXXXXX";
  dir_ = mkdtemp(pattern);
  static int counter = 0;
  name_ = "backstop-test-" + std::to_string(getpid()) + "-" + std::to_string(++counter) + "@localhost";
  port_ = free_port();
  dist_port_ = free_port();
  start();
}

RabbitNode::~RabbitNode() {
  kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

void RabbitNode::start() {
  // HOME: its own Erlang cookie, so that nodes starting at once do not race to create one.
  const std::string env = "HOME=" + dir_ + " RABBITMQ_NODENAME=" + name_ +
                          " RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=" + std::to_string(port_) +
                          " RABBITMQ_DIST_PORT=" + std::to_string(dist_port_) +
                          " ERL_EPMD_ADDRESS=127.0.0.1 RABBITMQ_MNESIA_BASE=" + dir_ +
                          "/mnesia RABBITMQ_LOG_BASE=" + dir_ + "/log RABBITMQ_PID_FILE=" + dir_ +
                          "/pid RABBITMQ_ENABLED_PLUGINS_FILE=" + dir_ + "/plugins RABBITMQ_CONFIG_FILE=" + dir_ +
                          "/rabbitmq RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'";
  const std::string command =
      "cd " + dir_ + " && env " + env + " /usr/lib/rabbitmq/bin/rabbitmq-server -detached >" + dir_ + "/start.log 2>&1";
  if (std::system(command.c_str()) != 0) throw std::runtime_error("rabbitmq-server did not start: see " + dir_);
  // The listener opens before the node has finished booting (users, vhosts):
  // ready means a login works.
  for (int i = 0; i < 600; ++i) {
    if (accepts(port_)) {
      try {
        Connection probe(url());
        std::ifstream pid_file(dir_ + "/pid");
        pid_file >> pid_;
        return;
      } catch (const std::runtime_error&) {
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  throw std::runtime_error("RabbitMQ did not accept connections on port " + std::to_string(port_) + "; logs in " +
                           dir_);
}

void RabbitNode::kill() {
  if (pid_ <= 0) {
    std::ifstream pid_file(dir_ + "/pid");
    pid_file >> pid_;
  }
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    for (int i = 0; i < 200 && ::kill(pid_, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  pid_ = -1;
  for (int i = 0; i < 200 && accepts(port_); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

std::string RabbitNode::url() const { return "amqp://guest:guest@127.0.0.1:" + std::to_string(port_) + "/"; }

QueueReader::QueueReader(std::string url, std::string exchange, std::string queue, std::string binding)
    : url_(std::move(url)), exchange_(std::move(exchange)), queue_(std::move(queue)) {
  Connection c(url_);
  amqp_exchange_declare(c.conn, 1, bytes(exchange_), amqp_cstring_bytes("topic"), 0, 1, 0, 0, amqp_empty_table);
  Connection::check(amqp_get_rpc_reply(c.conn), "exchange.declare");
  amqp_queue_declare(c.conn, 1, bytes(queue_), 0, 1, 0, 0, amqp_empty_table);
  Connection::check(amqp_get_rpc_reply(c.conn), "queue.declare");
  amqp_queue_bind(c.conn, 1, bytes(queue_), bytes(exchange_), bytes(binding), amqp_empty_table);
  Connection::check(amqp_get_rpc_reply(c.conn), "queue.bind");
}

std::vector<Received> QueueReader::take_all() const {
  Connection c(url_);
  std::vector<Received> out;
  for (;;) {
    const amqp_rpc_reply_t r = amqp_basic_get(c.conn, 1, bytes(queue_), 1);
    Connection::check(r, "basic.get");
    if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) break;
    const auto* ok = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded);
    Received m;
    m.routing_key = text(ok->routing_key);
    amqp_message_t message;
    Connection::check(amqp_read_message(c.conn, 1, &message, 0), "read message");
    if (message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) m.message_id = text(message.properties.message_id);
    if (message.properties._flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
      m.content_type = text(message.properties.content_type);
    if (message.properties._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) m.delivery_mode = message.properties.delivery_mode;
    m.body = text(message.body);
    amqp_destroy_message(&message);
    out.push_back(std::move(m));
    amqp_maybe_release_buffers(c.conn);
  }
  return out;
}

}  // namespace backstop::testing

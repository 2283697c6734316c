// outbox-drain against a real PostgreSQL and a real RabbitMQ node: every event
// arrives with its routing key, id and payload, in order per operation; four
// drainers at once send no row twice; a broker killed mid-drain loses nothing;
// a row that cannot be routed is parked after the retry limit, never deleted.
#include <gtest/gtest.h>
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "store/event_store.h"
#include "store/outbox_repository.h"
#include "support/pg.h"
#include "support/process.h"
#include "support/progress.h"
#include "support/pushgateway.h"
#include "support/rabbit.h"

namespace backstop::testing {
namespace {

using nlohmann::json;

class OutboxDrainTest : public ::testing::Test {
 protected:
  void SetUp() override { db.migrate(); }

  // `per_operation` events (a genesis, then adjustments) for each of `operations` operations.
  void events(int operations, int per_operation) const {
    db.exec(
        "INSERT INTO operation (id, tenant_id, symbol, side, average_entry_price, quantity, stop_price) "
        "SELECT i, 1 + i % 3, CASE WHEN i % 2 = 0 THEN 'BTCUSDT' ELSE 'ETHUSDT' END, 'BUY', 2000, 1, 1000 "
        "FROM generate_series(1, " +
        std::to_string(operations) + ") i");
    auto connection = db.connect();
    pqxx::work tx(*connection);
    std::vector<core::Event> batch;
    for (int step = 0; step < per_operation; ++step) {
      for (int op = 1; op <= operations; ++op) {
        core::Event e;
        e.operation_id = core::OperationId{op};
        e.tenant_id = core::TenantId{1 + op % 3};
        e.symbol = op % 2 == 0 ? "BTCUSDT" : "ETHUSDT";
        e.type = step == 0 ? core::EventType::kStopConfigured : core::EventType::kStopAdjusted;
        e.source = step == 0 ? core::EventSource::kBackfill : core::EventSource::kTrailing;
        e.execution_token = "op" + std::to_string(op) + (step == 0 ? "-genesis" : "-HS-" + std::to_string(step));
        e.stop_price = core::Decimal::from_integer(1000 + step);
        batch.push_back(std::move(e));
        if (batch.size() == 1000) store::EventStore::append(tx, std::exchange(batch, {}));
      }
    }
    store::EventStore::append(tx, std::move(batch));
    tx.commit();
  }

  std::vector<std::string> drain_args(const std::vector<std::string>& extra) const {
    std::vector<std::string> argv = {binary("outbox-drain"), "--database-url", db.url(), "--amqp-url",
                                     rabbit.url(),           "--exchange",     exchange, "--json"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  ProcessResult drain(const std::vector<std::string>& extra = {"--once"}) const { return run(drain_args(extra)); }

  static json summary(const ProcessResult& r) {
    const auto line = r.out.substr(0, r.out.find('\n'));
    if (!json::accept(line)) {
      ADD_FAILURE() << "no JSON summary; stdout: " << r.out << "\nstderr: " << r.err.substr(0, 3000);
      return json::object();
    }
    return json::parse(line);
  }

  // Per operation, the event_seq of its messages in arrival order must increase.
  static void expect_in_order_per_operation(const std::vector<Received>& messages) {
    std::map<std::int64_t, std::int64_t> last_seq;
    for (const Received& m : messages) {
      const json payload = json::parse(m.body);
      const std::int64_t op = payload.at("operation_id"), seq = payload.at("event_seq");
      EXPECT_GT(seq, last_seq[op]) << "operation " << op << " out of order";
      last_seq[op] = seq;
    }
  }

  // The outbox rows of one operation: "retry_count published parked" each, in outbox_id order.
  std::string rows_of(int operation) const {
    return db.scalar(
        "SELECT string_agg(retry_count || ' ' || published || ' ' || (parked_at IS NOT NULL), ',' "
        "ORDER BY outbox_id) FROM outbox WHERE operation_id = " +
        std::to_string(operation));
  }
  static std::set<std::int64_t> operations_in(const std::vector<Received>& messages) {
    std::set<std::int64_t> ops;
    for (const Received& m : messages) ops.insert(json::parse(m.body).at("operation_id").get<std::int64_t>());
    return ops;
  }

  TestDatabase db;
  RabbitNode rabbit;
  std::string exchange = "stop_events_test";
};

TEST_F(OutboxDrainTest, EveryEventArrivesWithRoutingKeyIdAndPayloadInOrderPerOperation) {
  QueueReader reader(rabbit.url(), exchange, "audit");
  events(100, 5);
  const ProcessResult r = drain();
  ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const json s = summary(r);
  EXPECT_EQ(s.at("published"), 500);
  EXPECT_EQ(s.at("backlog"), 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox WHERE published AND published_at IS NOT NULL"), 500);

  const std::vector<Received> messages = reader.take_all();
  ASSERT_EQ(messages.size(), 500u);
  std::map<std::string, std::string> expected;  // event id -> routing key
  const auto connection = db.connect();
  pqxx::read_transaction tx(*connection);
  for (const auto& row : tx.exec("SELECT event_id::text, 'stop.' || lower(event_type) || '.' || tenant_id || '.' || "
                                 "symbol FROM stop_events")) {
    expected[row[0].as<std::string>()] = row[1].as<std::string>();
  }
  for (const Received& m : messages) {
    ASSERT_EQ(expected.count(m.message_id), 1u) << m.message_id;
    EXPECT_EQ(m.routing_key, expected[m.message_id]);
    EXPECT_EQ(m.content_type, "application/json");
    EXPECT_EQ(m.delivery_mode, 2);  // persistent
    const json payload = json::parse(m.body);
    EXPECT_EQ(payload.at("event_id"), m.message_id);
    EXPECT_EQ(
        m.routing_key, "stop." +
                           [&] {
                             std::string t = payload.at("event_type");
                             for (char& c : t) c = static_cast<char>(std::tolower(c));
                             return t;
                           }() +
                           "." + std::to_string(payload.at("tenant_id").get<int>()) + "." +
                           payload.at("symbol").get<std::string>());
  }
  expect_in_order_per_operation(messages);
  // Nothing left: a second run publishes nothing.
  EXPECT_EQ(summary(drain()).at("published"), 0);
  EXPECT_TRUE(reader.take_all().empty());
}

TEST_F(OutboxDrainTest, FourConcurrentDrainersSendEveryRowOnce) {
  QueueReader reader(rabbit.url(), exchange, "audit");
  events(400, 10);
  std::vector<std::unique_ptr<Process>> drainers;
  for (int i = 0; i < 4; ++i)
    drainers.push_back(std::make_unique<Process>(drain_args({"--once", "--batch-size", "50"})));
  std::int64_t published = 0;
  for (auto& d : drainers) {
    const ProcessResult r = d->wait();
    ASSERT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
    published += summary(r).at("published").get<std::int64_t>();
  }
  EXPECT_EQ(published, 4000);
  const std::vector<Received> messages = reader.take_all();
  EXPECT_EQ(messages.size(), 4000u);
  std::set<std::string> ids;
  for (const Received& m : messages) ids.insert(m.message_id);
  EXPECT_EQ(ids.size(), 4000u);  // not one row twice on the normal path
  expect_in_order_per_operation(messages);
}

TEST_F(OutboxDrainTest, BrokerKilledMidDrainAndRestartedLosesNothing) {
  QueueReader reader(rabbit.url(), exchange, "audit");
  events(2000, 10);
  Process drainer(drain_args({"--batch-size", "100", "--poll-interval-ms", "20"}));
  ASSERT_TRUE(wait_until({.done = [&] { return db.count("SELECT count(*) FROM outbox WHERE published") >= 3000; },
                          .progress = db_progress(db, "SELECT count(*) FROM outbox WHERE published"),
                          .poll = std::chrono::milliseconds(5)}));
  const std::int64_t before = db.count("SELECT count(*) FROM outbox WHERE published");
  rabbit.kill();  // a crash: whatever was not confirmed is in doubt
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_LT(db.count("SELECT count(*) FROM outbox WHERE published"), 20000) << "the drain finished before the kill";
  rabbit.start();
  EXPECT_TRUE(wait_until({.done = [&] { return db.count("SELECT count(*) FROM outbox WHERE published") >= 20000; },
                          .progress = db_progress(db, "SELECT count(*) FROM outbox WHERE published")}));
  drainer.kill(SIGTERM);
  const ProcessResult r = drainer.wait();
  EXPECT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  EXPECT_NE(r.err.find("RabbitMQ unavailable"), std::string::npos);
  EXPECT_GT(before, 0);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox WHERE published"), 20000);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox WHERE retry_count > 0"), 0);  // an outage is not the rows' fault

  // At least once: the consumer's dedupe by message id yields exactly the set of events.
  const std::vector<Received> messages = reader.take_all();
  EXPECT_GE(messages.size(), 20000u);
  std::set<std::string> ids;
  for (const Received& m : messages) ids.insert(m.message_id);
  std::set<std::string> events;
  const auto connection = db.connect();
  pqxx::read_transaction tx(*connection);
  for (const auto& row : tx.exec("SELECT event_id::text FROM stop_events")) events.insert(row[0].as<std::string>());
  EXPECT_EQ(ids, events);
}

TEST_F(OutboxDrainTest, UnroutableRowIsRetriedThenParkedNeverDeleted) {
  QueueReader reader(rabbit.url(), exchange, "audit");
  events(3, 1);
  db.exec("UPDATE outbox SET routing_key = 'nowhere.bound' WHERE operation_id = 2");
  const ProcessResult r = drain({"--once", "--max-retries", "3", "--retry-backoff-ms", "0"});
  EXPECT_EQ(r.exit_code, 1) << r.err.substr(0, 3000);  // parked rows: partial failure
  const json s = summary(r);
  EXPECT_EQ(s.at("published"), 2);
  EXPECT_EQ(s.at("failed"), 3);
  EXPECT_EQ(s.at("parked"), 1);
  EXPECT_EQ(s.at("parked_rows"), 1);
  EXPECT_EQ(db.scalar("SELECT retry_count || ' ' || (parked_at IS NOT NULL) || ' ' || published FROM outbox "
                      "WHERE operation_id = 2"),
            "3 true false");
  EXPECT_NE(db.scalar("SELECT last_error FROM outbox WHERE operation_id = 2").find("312 NO_ROUTE"), std::string::npos);
  EXPECT_EQ(reader.take_all().size(), 2u);
  // Parked rows stay parked: a later run does not try them again.
  EXPECT_EQ(summary(drain()).at("failed"), 0);
}

// Issue 10, defect 8: an operation's events leave strictly in order. Its first
// row of the batch comes back unroutable while its second would route: the
// second is neither sent nor published nor charged a retry; it goes once the
// first went, after it.
TEST_F(OutboxDrainTest, LaterRowOfAnOperationWaitsBehindItsReturnedEarlierRow) {
  QueueReader reader(rabbit.url(), exchange, "audit");
  events(3, 2);  // operations 1..3: a genesis, then an adjustment; one batch
  const std::string first = db.scalar("SELECT min(outbox_id) FROM outbox WHERE operation_id = 2");
  const std::string routable = db.scalar("SELECT routing_key FROM outbox WHERE outbox_id = " + first);
  db.exec("UPDATE outbox SET routing_key = 'nowhere.bound' WHERE outbox_id = " + first);
  const ProcessResult r = drain({"--once", "--retry-backoff-ms", "600000"});
  EXPECT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const json s = summary(r);
  EXPECT_EQ(s.at("published"), 4);  // operations 1 and 3
  EXPECT_EQ(s.at("failed"), 1);
  EXPECT_EQ(rows_of(2), "1 false false,0 false false");  // the second waits, uncharged
  std::vector<Received> received = reader.take_all();
  EXPECT_EQ(received.size(), 4u);
  EXPECT_EQ(operations_in(received), (std::set<std::int64_t>{1, 3}));  // nothing of operation 2 reached a queue

  // The cause fixed and the retry due: the first goes, then the second.
  db.exec("UPDATE outbox SET routing_key = '" + routable + "', next_attempt_at = now() WHERE outbox_id = " + first);
  const ProcessResult again = drain();
  EXPECT_EQ(again.exit_code, 0) << again.err.substr(0, 3000);
  EXPECT_EQ(summary(again).at("published"), 2);
  EXPECT_EQ(rows_of(2), "1 true false,0 true false");
  const std::vector<Received> later = reader.take_all();
  ASSERT_EQ(later.size(), 2u);
  received.insert(received.end(), later.begin(), later.end());
  expect_in_order_per_operation(received);  // the consumer never saw the second before the first
}

// A parked row holds the later rows of its operation: the ready-row query
// does not hand them out, they stay unpublished and are counted as held, and
// once the parked row is un-parked (its cause fixed) they follow it, in order.
TEST_F(OutboxDrainTest, ParkedRowHoldsTheLaterRowsOfItsOperation) {
  QueueReader reader(rabbit.url(), exchange, "audit");
  events(3, 3);
  const std::string first = db.scalar("SELECT min(outbox_id) FROM outbox WHERE operation_id = 2");
  db.exec(
      "UPDATE outbox SET retry_count = 10, parked_at = now(), last_error = 'returned: 312 NO_ROUTE' "
      "WHERE outbox_id = " +
      first);
  const ProcessResult r = drain();
  EXPECT_EQ(r.exit_code, 0) << r.err.substr(0, 3000);
  const json s = summary(r);
  EXPECT_EQ(s.at("published"), 6);  // operations 1 and 3
  EXPECT_EQ(s.at("parked_rows"), 1);
  EXPECT_EQ(s.value("held_rows", -1), 2);
  EXPECT_EQ(rows_of(2), "10 false true,0 false false,0 false false");
  EXPECT_EQ(operations_in(reader.take_all()), (std::set<std::int64_t>{1, 3}));
  EXPECT_EQ(s.at("backlog"), 2);  // held rows are part of the backlog
  {
    const auto connection = db.connect();
    pqxx::read_transaction tx(*connection);
    EXPECT_EQ(store::OutboxRepository::due(tx), 0);  // nothing due: `--once` does not wait for them
  }
  // The operator's view: the parked row, its error and what it holds.
  const ProcessResult listed = drain({"--list-parked"});
  ASSERT_EQ(listed.exit_code, 0) << listed.err.substr(0, 3000);
  const json l = summary(listed);
  EXPECT_EQ(l.at("parked"), 1);
  ASSERT_EQ(l.at("rows").size(), 1u);
  EXPECT_EQ(l.at("rows")[0].at("outbox_id").get<std::int64_t>(), std::stoll(first));
  EXPECT_EQ(l.at("rows")[0].at("operation_id"), 2);
  EXPECT_EQ(l.at("rows")[0].at("held_rows"), 2);
  EXPECT_EQ(l.at("rows")[0].at("last_error"), "returned: 312 NO_ROUTE");
  EXPECT_EQ(rows_of(2), "10 false true,0 false false,0 false false");  // listing changes nothing
  // Another operation's re-queue touches nothing of operation 2.
  EXPECT_EQ(summary(drain({"--requeue-parked", "--operation", "3"})).at("requeued"), 0);
  EXPECT_EQ(rows_of(2), "10 false true,0 false false,0 false false");
  // Re-queued: the parked row first, then the two it held.
  const ProcessResult requeued = drain({"--requeue-parked", "--operation", "2"});
  ASSERT_EQ(requeued.exit_code, 0) << requeued.err.substr(0, 3000);
  EXPECT_EQ(summary(requeued).at("requeued"), 1);
  EXPECT_NE(requeued.err.find("parked outbox row re-queued"), std::string::npos) << requeued.err;
  EXPECT_EQ(rows_of(2), "0 false false,0 false false,0 false false");
  EXPECT_EQ(db.scalar("SELECT last_error FROM outbox WHERE outbox_id = " + first), "returned: 312 NO_ROUTE");
  const ProcessResult again = drain();
  EXPECT_EQ(again.exit_code, 0) << again.err.substr(0, 3000);
  EXPECT_EQ(summary(again).at("published"), 3);
  EXPECT_EQ(summary(again).value("held_rows", -1), 0);
  const std::vector<Received> later = reader.take_all();
  ASSERT_EQ(later.size(), 3u);
  EXPECT_EQ(operations_in(later), (std::set<std::int64_t>{2}));
  expect_in_order_per_operation(later);
}

TEST_F(OutboxDrainTest, OperationWithoutAParkedRowsActionIsAUsageError) {
  const ProcessResult r = drain({"--once", "--operation", "2"});
  EXPECT_EQ(r.exit_code, 2) << r.err.substr(0, 3000);
  EXPECT_NE(r.err.find("--operation goes with --list-parked or --requeue-parked"), std::string::npos) << r.err;
}

TEST_F(OutboxDrainTest, RunMetricsArePushed) {
  QueueReader reader(rabbit.url(), exchange, "audit");
  events(4, 1);
  db.exec("UPDATE outbox SET routing_key = 'nowhere.bound' WHERE operation_id = 3");
  const Pushgateway gateway;
  const ProcessResult r =
      drain({"--once", "--max-retries", "1", "--pushgateway-url", gateway.url(), "--metrics-instance", "d1"});
  EXPECT_EQ(r.exit_code, 1) << r.err.substr(0, 3000);
  const std::string metrics = gateway.metrics();
  for (const std::string line :
       {"backstop_outbox_drain_published{instance=\"d1\",job=\"backstop_outbox_drain\"} 3",
        "backstop_outbox_drain_failed{instance=\"d1\",job=\"backstop_outbox_drain\"} 1",
        "backstop_outbox_drain_parked_rows{instance=\"d1\",job=\"backstop_outbox_drain\"} 1",
        "backstop_outbox_drain_backlog{instance=\"d1\",job=\"backstop_outbox_drain\"} 0",
        "backstop_outbox_drain_oldest_age_seconds{instance=\"d1\",job=\"backstop_outbox_drain\"} 0",
        "backstop_outbox_drain_last_run_success{instance=\"d1\",job=\"backstop_outbox_drain\"} 1"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics.substr(0, 3000);
  }
}

TEST_F(OutboxDrainTest, UnreachableBrokerIsExitThreeAndChangesNothing) {
  events(2, 1);
  rabbit.kill();
  const ProcessResult r = run({binary("outbox-drain"), "--database-url", db.url(), "--amqp-url",
                               "amqp://backstop:s3cret@127.0.0.1:" + std::to_string(rabbit.port()) + "/", "--once"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("amqp://backstop:***@127.0.0.1"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("s3cret"), std::string::npos);
  EXPECT_EQ(db.count("SELECT count(*) FROM outbox WHERE published OR retry_count > 0"), 0);
}

}  // namespace
}  // namespace backstop::testing

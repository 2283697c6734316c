// Deterministic simulation of exits (issue 10), in the spirit of FoundationDB's
// simulation and TigerBeetle's VOPR: one seed decides a book, a price path, a
// schedule that interleaves several stop monitors and trailing passes at every
// await point, crashes at every step, and exchange faults. After every step
// the invariants are checked; a failure prints its seed, and
// `exit-simulation --seed N --verbose` replays it step by step.
//
// What is real and what is a model:
//  * real: the pure core the binaries run: core::evaluate (triggers),
//    core::trail (trailing), the exit state machine (fold_exit, start_attempt,
//    resume_open, on_answer, may_send, fences and backoff), client ids.
//  * model: PostgreSQL's guarantees that the orchestrator relies on, and the
//    orchestrator's use of them (pkg/exits/stop_monitor.cpp): a claim holds
//    its crossed rows FOR KEY SHARE from the re-read to its commit and re-decides on
//    them; STOP_TRIGGERED is unique per operation (the index of migration
//    0009); trailing takes its rows FOR UPDATE SKIP LOCKED and re-checks for a
//    claim under the lock; the append trigger refuses STOP_ADJUSTED after a
//    claim; per-token advisory locks die with their session; a transaction is
//    atomic (a crash before its commit leaves nothing). Each transaction is one
//    step, so every interleaving between transactions is reachable, which is
//    where these races live (inside one transaction PostgreSQL's locks
//    serialize what matters).
//  * model: the exchange: requests on the wire with delays (some beyond
//    recvWindow, which the exchange then refuses on arrival by its own clock),
//    clock skew, execution on arrival, 5xx before / after executing, answers
//    lost (timeouts), 429, -2010, EXPIRED partly or wholly unfilled, max_qty,
//    duplicate client ids accepted once the first order is done (Binance).
//  * model: the account (issue 13): the base asset the longs were bought with,
//    less base-asset fees at entry and sells made by hand in the exchange's
//    app; a SELL beyond the free balance is refused (-2010). A monitor reads
//    the balance when it sizes an attempt (the real one once per batch) and
//    takes an answered attempt's fill off it; the exit caps at it. Checked:
//    no exit records more "not held" than the account truly lacks, and every
//    exit still ends once faults stop.
//  * model: reconcile (issue 13, pkg/reconcile): 0-2 reconcile processes,
//    each pass two steps as the binary does it: (A) read the exchange (the
//    balance and the account's trades), any number of other steps, then (B)
//    one transaction: the rows FOR UPDATE SKIP LOCKED (a claim's share lock
//    skips a row), the exits read under the lock, core::reconcile_account,
//    its decisions applied. A trade is Backstop's own when an exit's event
//    named its order; a sell while an exit is in flight is no evidence. A
//    crash between A and B drops A. Foreign activity besides the hand sells:
//    withdrawals and deposits. Checked after every step: reconcile never
//    decides on an operation whose exit is in flight (R1), only lowers and
//    closes (R4), uses each trade once, never sends an order after it closed
//    an operation (R6), takes no Backstop fill for evidence (R2), and what
//    Backstop wrote off (reconcile's reductions
//    and closures, the exits' "not held") never exceeds what the account
//    truly lacks (R3: without activity elsewhere, nothing).
//
//   exit-simulation [--seeds N] [--first-seed S] [--seed S] [--verbose]
//                   [--mutant no-claim-lock|level-tokens|no-fence|before-issue-10|no-balance-cap|
//                             reconcile-db-first|reconcile-ignores-inflight|reconcile-ours-unknown|
//                             reconcile-sells-in-flight|reconcile-failed-at-quantity]
// A mutant removes one protection, to show the simulation finds what it guards.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/exit.h"
#include "core/reconcile.h"
#include "core/trailing.h"
#include "core/trigger.h"

namespace {

using backstop::core::Decimal;
using backstop::core::EventType;
using backstop::core::ExitActionKind;
using backstop::core::Side;
using backstop::core::TimePoint;
namespace core = backstop::core;
using namespace std::chrono_literals;

enum class Mutant {
  kNone,
  kNoClaimLock,
  kLevelTokens,
  kNoFence,
  kLevelTokensUnlocked,
  kNoBalanceCap,
  kReconcileDbFirst,           // the exits read before the exchange (at A), not under the lock
  kReconcileIgnoresInflight,   // exits in flight not given to the decision
  kReconcileOursUnknown,       // Backstop's own fills taken for sells elsewhere
  kReconcileSellsInFlight,     // sells since an exit went in flight taken for evidence (its order not recorded yet)
  kReconcileFailedAtQuantity,  // a failed exit's operation compared at its recorded quantity, not what the exit left
};

std::string client_id(std::string_view token, int attempt) {
  return std::string(token) + "#" + std::to_string(attempt);
}

struct Violation : std::runtime_error {
  using std::runtime_error::runtime_error;
};

Decimal D(const std::string& text) { return Decimal::parse(text); }
TimePoint at_ms(std::int64_t ms) { return TimePoint{} + std::chrono::milliseconds(ms); }

struct Op {
  std::int64_t id = 0;
  Side side = Side::kBuy;
  Decimal quantity;
  Decimal entry;
  Decimal stop;
  Decimal initial_stop;
  std::optional<Decimal> target;
  bool trails = false;
  Decimal offset;
  bool closed = false;
  int share_locks = 0;  // claims holding the row FOR KEY SHARE
  Decimal original;     // before reconcile lowered it
  bool closed_elsewhere = false;
  std::int64_t closed_elsewhere_at = 0;
  std::optional<core::PendingDrift> pending;  // sync_pending
  bool flagged_short = false;                 // sync_status SHORT
};

struct StoredEvent {
  std::int64_t op = 0;
  std::string token;
  core::ExitFact fact;
};

// The exchange's book of orders and the wire.
struct Request {
  int id = 0;
  int pid = 0;
  bool query = false;
  std::string client_order_id;
  std::int64_t op = 0;
  Decimal quantity;
  std::int64_t timestamp = 0;  // the sender's clock (exchange-synced) when built
  std::int64_t arrive_at = 0;
  std::int64_t answer_at = -1;  // -1: never answered (lost)
  bool arrived = false;
  std::optional<core::ExchangeAnswer> answer;
};

struct ExchangeOrder {
  std::string client_order_id;
  std::int64_t op = 0;
  Decimal executed;
  std::string status;
};

struct Config {
  std::int64_t recv_window = 5000;
  std::int64_t max_skew = 300;  // each clock within this of the database's
  std::int64_t timeout = 1500;  // the client's HTTP timeout
  Decimal min_qty = D("0.001");
  Decimal step = D("0.001");
  Decimal max_qty = D("0.7");
};

class World {
 public:
  World(std::uint64_t seed, Mutant mutant, bool verbose) : random_(seed), mutant_(mutant), verbose_(verbose) {
    timing_.recv_window = std::chrono::milliseconds(config_.recv_window);
    timing_.exchange_processing = 0ms;  // this exchange executes on arrival
    timing_.max_clock_offset = std::chrono::milliseconds(config_.max_skew);
    timing_.margin = 200ms;
    timing_.send_deadline = 300ms;
    timing_.backoff_first = 200ms;
    timing_.backoff_max = 2000ms;
    timing_.working_recheck = 100ms;
    if (mutant_ == Mutant::kNoFence) {  // re-send as soon as the exchange says -2013
      timing_.recv_window = 0ms;
      timing_.max_clock_offset = 0ms;
      timing_.margin = 0ms;
      timing_.send_deadline = 0ms;
    }
    exchange_skew_ = uniform(-config_.max_skew, config_.max_skew);
    price_ = D("1000");
    const int operations = static_cast<int>(uniform(1, 6));
    for (int i = 1; i <= operations; ++i) {
      Op o;
      o.id = i;
      o.side = chance(0.5) ? Side::kBuy : Side::kSell;
      o.quantity = Decimal::mul(Decimal::from_integer(uniform(1, 2000)), D("0.001"), core::Rounding::kDown);
      o.entry = price_;
      const Decimal distance = Decimal::from_integer(uniform(5, 40));
      o.stop = o.side == Side::kBuy ? o.entry - distance : o.entry + distance;
      o.initial_stop = o.stop;
      if (chance(0.5)) {
        const Decimal t = Decimal::from_integer(uniform(20, 80));
        o.target = o.side == Side::kBuy ? o.entry + t : o.entry - t;
      }
      o.trails = chance(0.6);
      o.offset = Decimal::from_integer(uniform(3, 20));
      o.original = o.quantity;
      ops_[o.id] = o;
      if (o.side == Side::kBuy) {
        // The long was bought: the account holds it, less the entry's
        // commission when it was taken in the base asset (Binance without BNB).
        held_ = held_ + o.quantity;
        longs_ = longs_ + o.quantity;
        core::TradeSeen entry;
        entry.id = next_trade_++;
        entry.symbol = "BTCUSDT";
        entry.is_buyer = true;
        entry.qty = o.quantity;
        entry.time = at_ms(opened_at_ + uniform(0, 500));
        entry.commission_asset = "USDT";
        if (chance(0.3)) {
          entry.commission = Decimal::mul(o.quantity, D("0.001"), core::Rounding::kUp);
          entry.commission_asset = "BTC";
          held_ = held_ - entry.commission;
        }
        trades_.push_back(entry);
      }
    }
    if (chance(0.3)) held_ = held_ + Decimal::from_integer(uniform(0, 3));  // holdings Backstop does not manage
    initial_held_ = held_;
    const int monitors = static_cast<int>(uniform(1, 3));
    for (int i = 0; i < monitors; ++i) start_monitor();
    const int reconcilers = static_cast<int>(uniform(0, 2));
    for (int i = 0; i < reconcilers; ++i) reconcilers_.push_back({});
    grace_ = std::chrono::milliseconds(uniform(0, 3000));
    trailers_ = static_cast<int>(uniform(0, 2));
    faults_until_ = now_ + uniform(500, 15000);
  }

  // Runs the schedule; throws Violation.
  void run() {
    const std::int64_t horizon = faults_until_ + 60000;
    while (now_ < horizon) {
      step();
      check();
      if (now_ > faults_until_ && all_settled()) break;
    }
    liveness();
  }

  std::int64_t steps() const { return steps_; }
  // Exits that recorded part of their target as not held (the cap at work).
  std::int64_t capped() const {
    std::int64_t n = 0;
    for (const auto& [token, state] : live_) n += state.not_held.is_positive() ? 1 : 0;
    return n;
  }

 private:
  struct Reconcile {
    bool has_read = false;  // step A done: its exchange read
    std::int64_t wake_at = 0;
    Decimal held;
    std::vector<core::TradeSeen> trades;
    std::int64_t read_at = 0;
    std::map<std::int64_t, std::optional<core::ExitState>> exits;  // the db-first mutant's early read
  };

  struct Monitor {
    int pid = 0;
    bool alive = true;
    enum Phase { kIdle, kScanned, kLocked, kDriving, kAwait } phase = kIdle;
    std::int64_t wake_at = 0;
    std::int64_t skew = 0;
    Decimal price;
    std::vector<std::int64_t> crossed;
    std::map<std::int64_t, Op> snapshot;
    std::vector<std::int64_t> locked;
    std::vector<std::pair<std::int64_t, core::Trigger>> decided;
    std::deque<std::string> todo;
    // The exit being driven.
    std::string token;
    std::int64_t op = 0;
    core::ExitState state;
    core::ExitAction action;
    int request = 0;
    bool has_action = false;
    // The free base asset this exit may sell: read when it sized its attempt,
    // less what its answered attempts filled since (nullopt: not read).
    std::optional<Decimal> sellable;
  };

  // ---- randomness
  std::int64_t uniform(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(random_);
  }
  bool chance(double p) { return std::bernoulli_distribution(p)(random_); }
  bool faulty() const { return now_ < faults_until_; }
  bool fault(double p) { return faulty() && chance(p); }

  void log(const std::string& line) const {
    if (verbose_) std::cout << "t=" << now_ << " " << line << "\n";
  }

  // ---- the store
  std::vector<StoredEvent> events_of(const std::string& token) const {
    std::vector<StoredEvent> out;
    for (const auto& e : events_) {
      if (e.token == token) out.push_back(e);
    }
    return out;
  }
  std::optional<std::string> claim_of(std::int64_t op) const {
    for (const auto& e : events_) {
      if (e.op == op && e.fact.type == EventType::kStopTriggered) return e.token;
    }
    return std::nullopt;
  }
  core::ExitState fold(const std::string& token) const {
    std::vector<core::ExitFact> facts;
    for (const auto& e : events_of(token)) facts.push_back(e.fact);
    return core::fold_exit(facts);
  }
  void append(std::int64_t op, const std::string& token, core::ExitFact fact) {
    fact.at = at_ms(now_);
    events_.push_back({op, token, fact});
    // The live projection, kept incrementally as the store does.
    live_[token] = core::apply_exit_fact(live_[token], fact);
    if (fact.type == EventType::kExecuted) ops_[op].closed = true;
  }
  core::ProtectedPosition position(const Op& o) const {
    core::ProtectedPosition p;
    p.id = core::OperationId{o.id};
    p.tenant = core::TenantId{1};
    p.symbol = "BTCUSDT";
    p.side = o.side;
    p.quantity = o.quantity;
    p.entry_price = o.entry;
    p.stop_price = o.stop;
    p.target_price = o.target;
    return p;
  }

  core::ExitContext context(const Monitor& m) const {
    core::ExitContext c;
    c.token = m.token;
    c.client_id = &client_id;
    c.rules = core::LotRules{config_.step, config_.min_qty, config_.max_qty, std::nullopt};
    c.price = m.price;
    c.now = at_ms(now_);
    c.timing = timing_;
    if (mutant_ != Mutant::kNoBalanceCap && ops_.at(m.op).side == Side::kBuy) c.sellable = m.sellable;
    return c;
  }

  // ---- processes
  void start_monitor() {
    Monitor m;
    m.pid = next_pid_++;
    m.skew = uniform(-config_.max_skew, config_.max_skew);
    m.wake_at = now_ + uniform(0, 50);
    monitors_.push_back(m);
  }

  void crash(Monitor& m) {
    log("crash monitor " + std::to_string(m.pid));
    m.alive = false;
    for (const auto id : m.locked) --ops_[id].share_locks;  // the transaction is rolled back
    m.locked.clear();
    for (auto it = advisory_.begin(); it != advisory_.end();) {
      it = it->second == m.pid ? advisory_.erase(it) : std::next(it);
    }
    // Its requests stay on the wire.
  }

  void step() {
    ++steps_;
    now_ += uniform(0, 30);
    if (chance(0.05)) now_ += uniform(100, 1500);  // a pause (GC, scheduling, a slow network)
    move_price();
    deliver();
    if (fault(0.002) && held_.is_positive()) {
      // Someone sells by hand in the exchange's app (part of the holdings).
      const Decimal sold =
          Decimal::mul(held_, Decimal::mul(Decimal::from_integer(uniform(1, 10)), D("0.1"), core::Rounding::kDown),
                       core::Rounding::kDown)
              .round_down_to_step(config_.step);
      held_ = held_ - sold;
      sold_by_hand_ = sold_by_hand_ + sold;
      if (sold.is_positive()) {
        core::TradeSeen t;
        t.id = next_trade_++;
        t.symbol = "BTCUSDT";
        t.qty = sold;
        t.time = at_ms(now_);
        t.commission_asset = "USDT";
        trades_.push_back(t);
      }
      log("sold by hand " + sold.to_string() + ", held " + held_.to_string());
    }
    if (fault(0.001) && held_.is_positive()) {  // a withdrawal: no trade says why
      const Decimal out = Decimal::mul(held_, D("0.3"), core::Rounding::kDown).round_down_to_step(config_.step);
      held_ = held_ - out;
      withdrawn_ = withdrawn_ + out;
      log("withdrawn " + out.to_string() + ", held " + held_.to_string());
    }
    if (fault(0.001)) {  // a deposit
      held_ = held_ + D("0.5");
      log("deposited 0.5, held " + held_.to_string());
    }
    for (Reconcile& r : reconcilers_) {
      if (now_ < r.wake_at || !chance(0.1)) continue;
      if (fault(0.03)) {
        log("crash reconcile");
        r = Reconcile{};  // its exchange read is lost with it
        r.wake_at = now_ + uniform(0, 500);
        continue;
      }
      reconcile(r);
    }
    // Trailing passes are one transaction each.
    for (int t = 0; t < trailers_; ++t) {
      if (chance(0.15)) trail();
    }
    std::vector<std::size_t> runnable;
    for (std::size_t i = 0; i < monitors_.size(); ++i) {
      if (monitors_[i].alive && ready(monitors_[i])) runnable.push_back(i);
    }
    if (runnable.empty()) return;
    Monitor& m =
        monitors_[runnable[static_cast<std::size_t>(uniform(0, static_cast<std::int64_t>(runnable.size()) - 1))]];
    if (fault(0.03)) {
      crash(m);
      start_monitor();
      return;
    }
    advance(m);
  }

  void move_price() {
    if (now_ > faults_until_ + 10000) return;  // a still market at the end, for the liveness check
    const std::int64_t move = uniform(-6, 6) + (chance(0.02) ? uniform(-60, 60) : 0);
    price_ = std::max(D("100"), price_ + Decimal::from_integer(move));
  }

  bool ready(const Monitor& m) const {
    if (now_ < m.wake_at) return false;
    if (m.phase != Monitor::kAwait) return true;
    const Request& r = requests_.at(m.request);
    const std::int64_t sent = r.timestamp - m.skew;
    if (r.answer && r.answer_at >= 0 && r.answer_at <= now_ && r.answer_at <= sent + config_.timeout) return true;
    return now_ >= sent + config_.timeout;  // the client gives up: unknown
  }

  void advance(Monitor& m) {
    switch (m.phase) {
      case Monitor::kIdle: {  // price + scan (a snapshot, no locks)
        m.price = price_;
        m.crossed.clear();
        m.snapshot.clear();
        for (const auto& [id, o] : ops_) {
          if (o.closed || claim_of(id)) continue;
          if (core::evaluate(position(o), m.price)) {
            m.crossed.push_back(id);
            m.snapshot[id] = o;
          }
        }
        m.phase = Monitor::kScanned;
        return;
      }
      case Monitor::kScanned: {
        // The claim's transaction: take the rows FOR KEY SHARE and decide on them as
        // they are now (the mutant decides on the scan's snapshot, unlocked).
        m.decided.clear();
        for (const auto id : m.crossed) {
          const Op& now_row = ops_[id];
          const bool unlocked = mutant_ == Mutant::kNoClaimLock || mutant_ == Mutant::kLevelTokensUnlocked;
          const Op& decided_on = unlocked ? m.snapshot.at(id) : now_row;
          if (!unlocked) {
            ++ops_[id].share_locks;
            m.locked.push_back(id);
          }
          if (now_row.closed) continue;
          const auto trigger = core::evaluate(position(decided_on), m.price);
          if (trigger) m.decided.push_back({id, *trigger});
        }
        m.phase = Monitor::kLocked;
        return;
      }
      case Monitor::kLocked: {  // insert the claims, commit, release the rows
        for (const auto& [id, trigger] : m.decided) {
          const Op& o = ops_[id];
          const std::string token = core::execution_token(core::OperationId{id}, trigger.kind, trigger.level);
          const bool by_level = mutant_ == Mutant::kLevelTokens || mutant_ == Mutant::kLevelTokensUnlocked;
          const bool taken = by_level ? !events_of(token).empty() : claim_of(id).has_value();
          if (taken || o.closed) continue;  // duplicate execution prevented
          const Decimal in_force = trigger.kind == core::TriggerKind::kStopLoss ? o.stop : o.target.value_or(Decimal());
          if (in_force != trigger.level && mutant_ != Mutant::kLevelTokensUnlocked) {
            throw Violation("op" + std::to_string(id) + " claimed at " + trigger.level.to_string() +
                            " while its level in force is " + in_force.to_string());
          }
          core::ExitFact f;
          f.type = EventType::kStopTriggered;
          f.quantity = o.quantity;
          append(id, token, f);
          claims_[token] = {m.price, trigger.level, o.side, trigger.kind};
          log("claim " + token + " at " + m.price.to_string());
        }
        for (const auto id : m.locked) --ops_[id].share_locks;
        m.locked.clear();
        // Then every unfinished exit (its own and the others'), as a pass does.
        m.todo.clear();
        std::set<std::string> tokens;
        for (const auto& e : events_) {
          if (e.fact.type == EventType::kStopTriggered) tokens.insert(e.token);
        }
        for (const auto& t : tokens) {
          if (!fold(t).finished()) m.todo.push_back(t);
        }
        std::shuffle(m.todo.begin(), m.todo.end(), random_);
        m.phase = Monitor::kDriving;
        return;
      }
      case Monitor::kDriving:
        drive(m);
        return;
      case Monitor::kAwait:
        receive(m);
        return;
    }
  }

  void release(Monitor& m) {
    if (!m.token.empty() && advisory_.count(m.token) != 0 && advisory_[m.token] == m.pid) advisory_.erase(m.token);
    m.token.clear();
    m.has_action = false;
  }

  void drive(Monitor& m) {
    if (!m.has_action) {
      // Next exit: lock, read its events, decide.
      if (m.todo.empty()) {
        m.phase = Monitor::kIdle;
        m.wake_at = now_ + uniform(10, 200);
        return;
      }
      m.token = m.todo.front();
      m.todo.pop_front();
      if (advisory_.count(m.token) != 0) {  // another process is on it
        m.token.clear();
        return;
      }
      advisory_[m.token] = m.pid;
      m.op = events_of(m.token).front().op;
      m.state = fold(m.token);
      if (m.state.finished()) return release(m);
      m.sellable.reset();
      if (m.state.open) {
        m.action = core::resume_open(m.state, context(m)).next;
        m.has_action = true;
        return;
      }
      if (core::waiting_for_retry(m.state, at_ms(now_))) return release(m);
      m.sellable = held_;                                 // the account read before the attempt is sized
      take(m, core::start_attempt(m.state, context(m)));  // one transaction
      return;
    }
    // Act on the exchange.
    if (m.action.kind == ExitActionKind::kSend) {
      if (mutant_ != Mutant::kNoFence && !timing_.may_send(m.state.sent_at, at_ms(now_))) {
        return release(m);  // left open, resolved after the fence
      }
      send(m, false);
    } else if (m.action.kind == ExitActionKind::kQuery) {
      send(m, true);
    } else {
      release(m);
    }
  }

  void take(Monitor& m, const core::ExitStep& step) {
    for (const auto& r : step.records) {
      if (r.order_id) known_orders_.insert(*r.order_id);  // the event names the order: its fills are Backstop's
      append(m.op, m.token, core::exit_fact_of(r, at_ms(now_)));
      log("record " + std::string(core::to_string(r.type)) + " " + m.token + " attempt " + std::to_string(r.attempt) +
          " filled " + r.filled.to_string());
    }
    m.state = fold(m.token);
    m.action = step.next;
    m.has_action = step.next.kind == ExitActionKind::kSend || step.next.kind == ExitActionKind::kQuery;
    if (!m.has_action) release(m);
  }

  void send(Monitor& m, bool query) {
    if (!query && ops_.at(m.op).closed_elsewhere) {
      throw Violation("an order sent for op" + std::to_string(m.op) + " after reconcile closed it elsewhere");
    }
    Request r;
    r.id = next_request_++;
    r.pid = m.pid;
    r.query = query;
    r.client_order_id = m.action.client_order_id;
    r.op = m.op;
    r.quantity = m.action.quantity;
    r.timestamp = now_ + m.skew;
    std::int64_t delay = uniform(1, 40);
    if (fault(0.08)) delay = uniform(200, config_.recv_window + 2 * config_.max_skew + 1500);  // held on the wire
    r.arrive_at = now_ + delay;
    requests_[r.id] = r;
    m.request = r.id;
    m.phase = Monitor::kAwait;
    log(std::string(query ? "query " : "send ") + r.client_order_id + " arrives at " + std::to_string(r.arrive_at));
  }

  void receive(Monitor& m) {
    Request& r = requests_.at(m.request);
    const std::int64_t sent = r.timestamp - m.skew;
    core::ExchangeAnswer answer;
    if (r.answer && r.answer_at >= 0 && r.answer_at <= sent + config_.timeout) {
      answer = *r.answer;
    } else {
      answer.kind = core::AnswerKind::kUnknown;
      answer.error = "timeout";
    }
    answer.asked_at = at_ms(sent);
    m.phase = Monitor::kDriving;
    if (r.query && answer.kind == core::AnswerKind::kUnknown) return release(m);  // a later pass asks again
    if (m.sellable && answer.kind == core::AnswerKind::kOrder && answer.order->final) {
      m.sellable = *m.sellable - answer.order->executed;  // what it sold has left the balance read
    }
    take(m, core::on_answer(m.state, answer, context(m)));
  }

  // The exchange: requests arrive (in time order), are judged by the
  // exchange's clock, executed, answered.
  void deliver() {
    for (auto& [id, r] : requests_) {
      if (r.arrived || r.arrive_at > now_) continue;
      r.arrived = true;
      const std::int64_t server = r.arrive_at + exchange_skew_;
      r.answer_at = r.arrive_at + uniform(1, 20);
      core::ExchangeAnswer a;
      if (r.query) {
        a = query(r.client_order_id);
        if (fault(0.05)) {
          a = {};
          a.kind = core::AnswerKind::kUnknown;
        }
        r.answer = a;
        continue;
      }
      if (r.timestamp > server + 1000 || server - r.timestamp > config_.recv_window) {
        a.kind = core::AnswerKind::kNotPlaced;
        a.error = "-1021 outside recvWindow";
      } else if (fault(0.05)) {
        a.kind = core::AnswerKind::kNotPlaced;
        a.error = chance(0.5) ? "429 -1015" : "-2010 insufficient balance";
        a.not_before = at_ms(r.answer_at + uniform(0, 500));
      } else if (fault(0.05)) {
        a.kind = core::AnswerKind::kUnknown;  // 5xx before executing
        a.error = "503";
      } else if (r.quantity > config_.max_qty || r.quantity < config_.min_qty) {
        a.kind = core::AnswerKind::kRejected;
        a.error = "-1013 Filter failure: LOT_SIZE";
      } else if (ops_.at(r.op).side == Side::kBuy && r.quantity > held_) {
        a.kind = core::AnswerKind::kNotPlaced;  // a long's exit sells the base asset
        a.error = "-2010 Account has insufficient balance for requested action.";
      } else {
        Decimal executed = r.quantity;
        std::string status = "FILLED";
        if (fault(0.1)) {
          const Decimal part = Decimal::mul(Decimal::from_integer(uniform(0, 9)), D("0.1"), core::Rounding::kDown);
          executed = Decimal::mul(r.quantity, part, core::Rounding::kDown).round_down_to_step(config_.step);
          status = "EXPIRED";
        }
        orders_.push_back({r.client_order_id, r.op, executed, status});
        filled_[r.op] = filled_[r.op] + executed;
        if (ops_.at(r.op).side == Side::kBuy) held_ = held_ - executed;
        if (executed.is_positive()) {
          core::TradeSeen t;
          t.id = next_trade_++;
          t.symbol = "BTCUSDT";
          t.is_buyer = ops_.at(r.op).side == Side::kSell;
          t.qty = executed;
          t.time = at_ms(server);
          t.commission_asset = "USDT";
          trades_.push_back(t);
          trade_order_[t.id] = r.client_order_id;
        }
        log("exchange executes " + r.client_order_id + " " + executed.to_string() + " " + status);
        a.kind = core::AnswerKind::kOrder;
        a.order = core::OrderView{r.client_order_id, status, true, executed,
                                  Decimal::mul(executed, price_, core::Rounding::kDown)};
        if (fault(0.05)) {
          a = {};
          a.kind = core::AnswerKind::kUnknown;  // 5xx after executing
          a.error = "503";
        }
      }
      if (fault(0.05)) r.answer_at = -1;  // the answer is lost
      r.answer = a;
    }
  }

  core::ExchangeAnswer query(const std::string& client_order_id) const {
    core::ExchangeAnswer a;
    // The latest order with this id (Binance keeps one per id).
    for (auto it = orders_.rbegin(); it != orders_.rend(); ++it) {
      if (it->client_order_id == client_order_id) {
        a.kind = core::AnswerKind::kOrder;
        a.order = core::OrderView{it->client_order_id, it->status, true, it->executed,
                                  Decimal::mul(it->executed, price_, core::Rounding::kDown)};
        return a;
      }
    }
    a.kind = core::AnswerKind::kNotFound;
    return a;
  }

  // One trailing transaction: rows FOR UPDATE SKIP LOCKED, re-checked for a claim under the lock.
  void trail() {
    for (auto& [id, o] : ops_) {
      if (!o.trails || o.closed) continue;
      if (o.share_locks > 0) continue;  // SKIP LOCKED: a claim holds it
      if (claim_of(id)) continue;       // the levels are frozen once an exit is claimed
      core::TrailingRule rule;
      rule.mode = core::TrailingMode::kAbsolute;
      rule.offset = o.offset;
      core::TrailingPosition p{o.side, o.entry, o.initial_stop, o.stop};
      std::optional<core::StopAdjustment> adjustment;
      try {
        core::validate(rule, p);
        adjustment = core::trail(rule, p, price_);
      } catch (const core::TrailingError&) {
        continue;
      }
      if (!adjustment) continue;
      log("trail op" + std::to_string(id) + " " + o.stop.to_string() + " -> " + adjustment->new_stop.to_string());
      const bool tighter = o.side == Side::kBuy ? adjustment->new_stop > o.stop : adjustment->new_stop < o.stop;
      if (!tighter) throw Violation("trailing loosened the stop of op" + std::to_string(id));
      o.stop = adjustment->new_stop;
      adjusted_after_claim_ = adjusted_after_claim_ || claim_of(id).has_value();
    }
  }

  // ---- reconcile (pkg/reconcile/reconciler.cpp)
  std::optional<core::ExitState> exit_of(std::int64_t op) const {
    const auto claim = claim_of(op);
    if (!claim) return std::nullopt;
    return fold(*claim);
  }

  void reconcile(Reconcile& r) {
    if (!r.has_read) {  // A: the exchange first
      r.has_read = true;
      r.held = held_;
      r.trades = trades_;
      r.read_at = now_;
      if (mutant_ == Mutant::kReconcileDbFirst) {
        for (const auto& [id, o] : ops_) r.exits[id] = exit_of(id);
      }
      log("reconcile reads the account: held " + held_.to_string());
      return;
    }
    // B: one transaction. Rows a claim holds are skipped; the exits are read
    // under the lock (the mutant uses what it read before the exchange).
    std::vector<core::ReconcileOperation> in;
    for (const auto& [id, o] : ops_) {
      if (o.closed || o.share_locks > 0) continue;
      core::ReconcileOperation op;
      op.id = core::OperationId{id};
      op.symbol = "BTCUSDT";
      op.base_asset = "BTC";
      op.side = o.side;
      op.quantity = o.quantity;
      op.opened_at = at_ms(opened_at_);
      op.pending = o.pending;
      op.flagged_short = o.flagged_short;
      op.exit = mutant_ == Mutant::kReconcileDbFirst ? r.exits[id] : exit_of(id);
      if (mutant_ == Mutant::kReconcileIgnoresInflight) op.exit.reset();
      // A failed exit's operation holds what the exit left (it sold some, or
      // found some not held): that is what is compared.
      if (op.exit && op.exit->finished() && mutant_ != Mutant::kReconcileFailedAtQuantity)
        op.quantity = std::max(Decimal(), std::min(o.quantity, op.exit->remaining()));
      in.push_back(op);
    }
    std::optional<TimePoint> in_flight_since;
    for (const auto& e : events_) {
      if (e.fact.type == EventType::kStopTriggered && !fold(e.token).finished()) {
        in_flight_since = in_flight_since ? std::min(*in_flight_since, e.fact.at) : e.fact.at;
      }
    }
    core::AccountObservation seen;
    seen.read_at = at_ms(r.read_at);
    seen.balances["BTC"] = core::HeldBalance{r.held, Decimal()};
    for (core::TradeSeen t : r.trades) {
      const auto order = trade_order_.find(t.id);
      const bool backstops = order != trade_order_.end();
      t.ours = backstops && known_orders_.count(order->second) != 0 && mutant_ != Mutant::kReconcileOursUnknown;
      t.attributed = attributed_.count(t.id) != 0;
      if (!t.is_buyer && !t.ours && in_flight_since && t.time >= *in_flight_since - 60s &&
          mutant_ != Mutant::kReconcileOursUnknown && mutant_ != Mutant::kReconcileSellsInFlight) {
        t.attributed = true;  // maybe an exit's own fill, its order not recorded yet
      }
      seen.trades.push_back(t);
    }
    core::ReconcileRules rules;
    rules.grace = grace_;
    rules.lots["BTCUSDT"] = core::LotRules{config_.step, config_.min_qty, std::nullopt, std::nullopt};
    const core::ReconcileResult result = core::reconcile_account(in, seen, rules);
    std::set<std::int64_t> this_pass;
    for (std::size_t i = 0; i < result.operations.size(); ++i) {
      const core::OperationDecision& d = result.operations[i];
      Op& o = ops_.at(d.id.value);
      const auto now_exit = exit_of(d.id.value);
      const bool writes = d.outcome == core::SyncOutcome::kReducedElsewhere ||
                          d.outcome == core::SyncOutcome::kClosedElsewhere ||
                          d.outcome == core::SyncOutcome::kShortUnexplained;
      if (writes && now_exit && !now_exit->finished()) {
        throw Violation("R1: reconcile decided " + std::string(core::to_string(d.outcome)) + " on op" +
                        std::to_string(d.id.value) + " whose exit is in flight");
      }
      o.pending = d.pending;
      if (d.outcome == core::SyncOutcome::kShortUnexplained) o.flagged_short = true;
      if (d.outcome == core::SyncOutcome::kInSync || d.outcome == core::SyncOutcome::kReducedElsewhere) {
        o.flagged_short = false;
      }
      if (d.outcome != core::SyncOutcome::kReducedElsewhere && d.outcome != core::SyncOutcome::kClosedElsewhere) {
        continue;
      }
      const Decimal compared = in[i].quantity;
      const Decimal after = d.new_quantity.value_or(Decimal());
      if (after >= compared || after.is_negative()) {
        throw Violation("R4: reconcile took op" + std::to_string(d.id.value) + " from " + compared.to_string() +
                        " to " + after.to_string());
      }
      // A trade may explain several reductions of one pass (a sell that
      // closed two positions), never one of a later pass again.
      for (const auto id : d.trade_ids) {
        if (attributed_.count(id) != 0) throw Violation("trade " + std::to_string(id) + " explained again");
        if (trade_order_.count(id) != 0) {  // R2: evidence is a trade made elsewhere
          throw Violation("R2: op" + std::to_string(d.id.value) + " reduced on trade " + std::to_string(id) +
                          ", Backstop's own fill of " + trade_order_.at(id));
        }
        this_pass.insert(id);
      }
      // A closure leaves what is held below the minimum (dust) in the account:
      // not written off as lacking.
      const Decimal dust = d.outcome == core::SyncOutcome::kClosedElsewhere ? d.held : Decimal();
      written_off_ = written_off_ + (compared - after - dust);
      o.quantity = o.quantity - (compared - after);
      if (d.outcome == core::SyncOutcome::kClosedElsewhere) {
        o.closed = true;
        o.closed_elsewhere = true;
      }
      log("reconcile " + std::string(core::to_string(d.outcome)) + " op" + std::to_string(d.id.value) + " " +
          compared.to_string() + " -> " + after.to_string() + " (" + d.reason + ")");
    }
    attributed_.insert(this_pass.begin(), this_pass.end());
    r = Reconcile{};
    r.wake_at = now_ + uniform(100, 2000);
  }

  // ---- invariants
  void check() {
    std::map<std::int64_t, int> claims;
    for (const auto& e : events_) {
      if (e.fact.type == EventType::kStopTriggered) ++claims[e.op];
    }
    for (const auto& [op, n] : claims) {
      if (n > 1) throw Violation("op" + std::to_string(op) + " has " + std::to_string(n) + " exits");
    }
    std::map<std::string, int> ids;
    for (const auto& o : orders_) {
      if (o.executed.is_positive() && ++ids[o.client_order_id] > 1) {
        throw Violation("client order id " + o.client_order_id + " filled twice");
      }
      const auto claim = claim_of(o.op);
      if (!claim) throw Violation("an order for op" + std::to_string(o.op) + " that has no claimed exit");
      const auto& c = claims_.at(*claim);
      if (!core::crosses(c.side, c.kind, c.level, c.price)) throw Violation("an exit sent for an untriggered position");
    }
    for (const auto& [op, filled] : filled_) {
      if (filled > ops_.at(op).original) {
        throw Violation("op" + std::to_string(op) + ": the exchange filled " + filled.to_string() +
                        " of a position of " + ops_.at(op).original.to_string());
      }
    }
    for (const auto& [token, state] : live_) {
      const core::ExitState rebuilt = fold(token);
      if (rebuilt.status != state.status || rebuilt.filled != state.filled || rebuilt.attempts != state.attempts ||
          rebuilt.target != state.target || rebuilt.not_held != state.not_held) {
        throw Violation("replay of " + token + " differs from the live projection");
      }
      if (state.status == core::ExecutionStatus::kExecuted) {
        const std::int64_t op = events_of(token).front().op;
        const Decimal exchange_filled = filled_[op];
        if (exchange_filled != state.filled) {
          throw Violation(token + " EXECUTED with " + state.filled.to_string() + " but the exchange filled " +
                          exchange_filled.to_string());
        }
        const Decimal dust = state.target - state.filled - state.not_held;
        if (dust.is_negative() || (dust.is_positive() && dust >= config_.min_qty)) {
          throw Violation(token + " EXECUTED leaving " + dust.to_string() + " (not dust)");
        }
      }
      if (state.not_held.is_negative() || state.filled + state.not_held > state.target) {
        throw Violation(token + ": filled " + state.filled.to_string() + " and not held " + state.not_held.to_string() +
                        " exceed the target " + state.target.to_string());
      }
    }
    // Never more recorded "not held" than the account truly lacks for the
    // longs: their quantities, less what it held at the start, plus what was
    // sold by hand. An over-count would leave part of a position unsold.
    // Reconcile's reductions and closures count the same way (R3): with
    // nothing done elsewhere, nothing is written off.
    Decimal not_held;
    for (const auto& [token, state] : live_) not_held = not_held + state.not_held;
    Decimal lacking = longs_ - initial_held_ + sold_by_hand_ + withdrawn_;
    if (lacking.is_negative()) lacking = Decimal();
    if (not_held + written_off_ > lacking) {
      throw Violation("exits recorded " + not_held.to_string() + " as not held and reconcile wrote off " +
                      written_off_.to_string() + ", the account lacks only " + lacking.to_string());
    }
    if (held_.is_negative()) throw Violation("the account sold more than it held");
    if (adjusted_after_claim_) throw Violation("a stop moved after its exit was claimed");
  }

  bool all_settled() const {
    for (const auto& [id, o] : ops_) {
      const auto claim = claim_of(id);
      if (claim && !fold(*claim).finished()) return false;
      if (!claim && !o.closed && core::evaluate(position(o), price_)) return false;
    }
    for (const auto& [id, r] : requests_) {
      if (!r.arrived) return false;
    }
    return true;
  }

  void liveness() const {
    for (const auto& [id, o] : ops_) {
      const auto claim = claim_of(id);
      if (claim && !fold(*claim).finished()) {
        throw Violation("liveness: op" + std::to_string(id) + "'s exit " + *claim +
                        " never finished after faults stopped");
      }
      if (!claim && !o.closed && core::evaluate(position(o), price_)) {
        throw Violation("liveness: op" + std::to_string(id) + " is crossed and was never claimed");
      }
    }
  }

  struct Claim {
    Decimal price;
    Decimal level;
    Side side;
    core::TriggerKind kind;
  };

  std::mt19937_64 random_;
  Mutant mutant_;
  bool verbose_;
  Config config_;
  core::ExitTiming timing_;
  std::int64_t now_ = 1'000'000;
  std::int64_t faults_until_ = 0;
  std::int64_t exchange_skew_ = 0;
  std::int64_t steps_ = 0;
  Decimal price_;
  std::map<std::int64_t, Op> ops_;
  std::vector<StoredEvent> events_;
  std::map<std::string, core::ExitState> live_;
  std::map<std::string, Claim> claims_;
  std::map<std::string, int> advisory_;
  std::vector<Monitor> monitors_;
  int trailers_ = 0;
  int next_pid_ = 1;
  int next_request_ = 1;
  std::map<int, Request> requests_;
  std::vector<ExchangeOrder> orders_;
  std::map<std::int64_t, Decimal> filled_;
  bool adjusted_after_claim_ = false;
  std::vector<Reconcile> reconcilers_;
  std::chrono::milliseconds grace_{0};
  std::int64_t opened_at_ = 1'000'000 - 60'000;      // the entries, a minute before the schedule
  std::vector<core::TradeSeen> trades_;              // the account's trades (myTrades)
  std::map<std::int64_t, std::string> trade_order_;  // Backstop's fills: trade id -> client order id
  std::set<std::string> known_orders_;               // orders an exit's event named
  std::set<std::int64_t> attributed_;                // trades that explained a reduction
  std::int64_t next_trade_ = 1;
  Decimal written_off_;  // reconcile's reductions and closures
  Decimal withdrawn_;
  Decimal held_;          // the account's free base asset
  Decimal initial_held_;  // at the start
  Decimal longs_;         // the longs' quantities
  Decimal sold_by_hand_;
};

}  // namespace

int main(int argc, char** argv) {
  std::uint64_t seeds = 1000, first = 1;
  std::optional<std::uint64_t> only;
  bool verbose = false;
  Mutant mutant = Mutant::kNone;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << arg << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--seeds") {
      seeds = std::stoull(next());
    } else if (arg == "--first-seed") {
      first = std::stoull(next());
    } else if (arg == "--seed") {
      only = std::stoull(next());
    } else if (arg == "--verbose") {
      verbose = true;
    } else if (arg == "--mutant") {
      const std::string m = next();
      if (m == "no-claim-lock") {
        mutant = Mutant::kNoClaimLock;
      } else if (m == "level-tokens") {
        mutant = Mutant::kLevelTokens;
      } else if (m == "no-fence") {
        mutant = Mutant::kNoFence;
      } else if (m == "before-issue-10") {  // level tokens and unlocked claims: the claims as they were
        mutant = Mutant::kLevelTokensUnlocked;
      } else if (m == "no-balance-cap") {  // exits sized without the account's balance
        mutant = Mutant::kNoBalanceCap;
      } else if (m == "reconcile-db-first") {
        mutant = Mutant::kReconcileDbFirst;
      } else if (m == "reconcile-ignores-inflight") {
        mutant = Mutant::kReconcileIgnoresInflight;
      } else if (m == "reconcile-ours-unknown") {
        mutant = Mutant::kReconcileOursUnknown;
      } else if (m == "reconcile-sells-in-flight") {
        mutant = Mutant::kReconcileSellsInFlight;
      } else if (m == "reconcile-failed-at-quantity") {
        mutant = Mutant::kReconcileFailedAtQuantity;
      } else {
        std::cerr << "unknown mutant " << m
                  << " (no-claim-lock, level-tokens, no-fence, before-issue-10, no-balance-cap, reconcile-db-first, "
                     "reconcile-ignores-inflight, reconcile-ours-unknown, reconcile-sells-in-flight, "
                     "reconcile-failed-at-quantity)\n";
        return 2;
      }
    } else {
      std::cerr << "usage: exit-simulation [--seeds N] [--first-seed S] [--seed S] [--verbose] [--mutant M]\n";
      return 2;
    }
  }
  if (only) {
    first = *only;
    seeds = 1;
  }
  const auto start = std::chrono::steady_clock::now();
  std::uint64_t failures = 0;
  std::int64_t steps = 0;
  std::int64_t capped = 0;
  for (std::uint64_t seed = first; seed < first + seeds; ++seed) {
    World world(seed, mutant, verbose);
    try {
      world.run();
    } catch (const Violation& v) {
      ++failures;
      if (failures <= 5) {
        std::cout << "seed " << seed << ": " << v.what() << "\n  replay: exit-simulation --seed " << seed
                  << " --verbose" << (mutant == Mutant::kNone ? "" : " --mutant ...") << "\n";
      }
    }
    steps += world.steps();
    capped += world.capped();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "exit simulation: " << seeds << " schedules (seeds " << first << ".." << first + seeds - 1 << "), "
            << steps << " steps, invariants checked after every step, " << capped
            << " exits capped at the account's balance, " << failures << " failing, " << seconds << " s\n";
  return failures == 0 ? 0 : 1;
}

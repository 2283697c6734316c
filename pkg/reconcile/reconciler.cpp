#include "reconcile/reconciler.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <set>

#include "core/event.h"
#include "exits/exit_events.h"
#include "runtime/exit_code.h"
#include "runtime/log.h"
#include "store/db.h"
#include "store/event_store.h"
#include "store/monitor_repository.h"

namespace backstop::reconcile {
namespace {

using core::Decimal;
using core::SyncOutcome;
using nlohmann::json;

// What went wrong with the exchange: an answer that came but could not be
// read is the exchange's malformed data (the pass fails, exit 1); anything
// else is an exchange that cannot be reached now (exit 3, retried later).
struct ExchangeFailure {
  std::string message;
  bool malformed = false;
  bool refused_credentials = false;  // -2014/-2015/-1022, HTTP 401: a configuration error (exit 2)
};

template <typename T>
T value_or_throw(exchange::Result<T> r, const std::string& what) {
  if (!r.ok()) {
    const auto& e = r.error();
    const bool refused = e.code == -2014 || e.code == -2015 || e.code == -1022 || e.http_status == 401;
    throw ExchangeFailure{what + ": " + e.describe(), e.http_status >= 200 && e.http_status < 300, refused};
  }
  return std::move(r.value());
}

std::int64_t millis_of(core::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

core::TimePoint at_millis(std::int64_t ms) { return core::TimePoint{} + std::chrono::milliseconds(ms); }

std::string iso(core::TimePoint t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
  const auto ms = millis_of(t) % 1000;
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03lldZ", text, static_cast<long long>(ms));
  return out;
}

// What the exchange said, read before anything is written.
struct ExchangeView {
  exchange::ExchangeRules rules;
  exchange::Account account;
  core::TimePoint read_at;
  std::vector<store::TradeRecord> trades;
  std::map<std::string, Decimal> prices;
  std::vector<core::OpenOrderSeen> open_orders;
  // Each symbol whose trades were read, with the newest trade id the exchange
  // showed (-1: none); its cursor moves there.
  std::map<std::string, std::int64_t> read_symbols;
};

core::Event sync_event(const store::LockedOperation& l, core::EventType type, std::string token) {
  core::Event e;
  e.operation_id = l.op.id;
  e.tenant_id = l.tenant;
  e.symbol = l.op.symbol;
  e.type = type;
  e.source = core::EventSource::kReconcile;
  e.execution_token = std::move(token);
  return e;
}

}  // namespace

Reconciler::Reconciler(store::Connection& connection, exchange::Exchange& market, exchange::AccountApi& account,
                       ReconcileOptions options)
    : connection_(connection), market_(market), account_(account), options_(std::move(options)) {}

// After the pass committed: each orphan cancelled by its client id. -2011 (not
// open any more: filled or cancelled meanwhile) is what was wanted; any other
// answer is kept on the orphan and fails the run (exit 1).
void Reconciler::cancel_orphans(ReconcileSummary& summary) {
  for (OrphanReport& o : summary.orphans) {
    ++summary.requests;
    const auto answer = account_.cancel_order(o.symbol, o.client_order_id);
    std::optional<std::string> error;
    if (answer.ok()) {
      o.cancel = answer.value() ? "cancelled" : "already gone";
      ++summary.orphans_cancelled;
    } else {
      error = answer.error().describe();
      o.cancel = *error;
      summary.failed = true;
      summary.error = "cancel of orphan " + o.client_order_id + ": " + *error;
    }
    log::info("orphan order", {{"account", options_.scope.account},
                               {"symbol", o.symbol},
                               {"client_order_id", o.client_order_id},
                               {"cancel", o.cancel}});
    store::UnitOfWork tx(connection_);
    store::ReconcileRepository::record_cancel(tx, options_.scope.account, o.symbol, o.order_id, error);
    tx.commit();
  }
}

void Reconciler::record_failure(const std::string& error) {
  if (options_.dry_run) return;
  store::UnitOfWork tx(connection_);
  store::ReconcileRepository::record_failure(tx, options_.scope.account, error);
  tx.commit();
}

ReconcileSummary Reconciler::run_pass() {
  const auto started = std::chrono::steady_clock::now();
  ReconcileSummary summary;
  summary.account = options_.scope.account;
  const auto finish = [&] {
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return summary;
  };
  store::AccountMemory memory;
  {
    store::ReadOnlyWork tx(connection_);
    memory = store::ReconcileRepository::memory(tx, options_.scope);
    tx.commit();
  }

  // 2. The exchange, all of it before any write.
  ExchangeView seen;
  summary.orphans_checked =
      options_.cancel_orphans || !memory.orphans_checked_at ||
      std::chrono::system_clock::now() - *memory.orphans_checked_at >= options_.orphan_check_interval;
  const bool read_exchange = !memory.first_opened.empty() || summary.orphans_checked;
  if (read_exchange) {
    try {
      ++summary.requests;
      seen.rules = value_or_throw(market_.rules(), "exchangeInfo");
      seen.read_at = std::chrono::system_clock::now();
      ++summary.requests;
      seen.account = value_or_throw(account_.account(), "account");
      if (seen.account.account_type != "SPOT") {
        const std::string why = "account " + options_.scope.account + " is a " + seen.account.account_type +
                                " account: reconcile compares spot balances only; nothing was changed";
        record_failure(why);
        throw runtime::UsageError(why);
      }
      if (memory.uid && seen.account.uid && *memory.uid != *seen.account.uid) {
        const std::string why = "account " + options_.scope.account + " was uid " + std::to_string(*memory.uid) +
                                " and the credentials now reach uid " + std::to_string(*seen.account.uid) +
                                ": refusing to reconcile its positions against another account; nothing was changed";
        record_failure(why);
        throw runtime::UsageError(why);
      }
      if (!seen.account.uid) {
        log::warn("the account answer has no uid: a change of account cannot be detected",
                  {{"account", options_.scope.account}});
      }
      bool moved = false;
      std::map<std::int64_t, bool> order_owner;  // exchange order id -> Backstop's
      for (const auto& [symbol, first_opened] : memory.first_opened) {
        const auto rules = seen.rules.find(symbol);
        if (rules == seen.rules.end() || rules->second.base_asset.empty()) continue;
        const std::string& asset = rules->second.base_asset;
        const auto now = seen.account.balances.find(asset);
        const core::HeldBalance held = now == seen.account.balances.end()
                                           ? core::HeldBalance{}
                                           : core::HeldBalance{now->second.free, now->second.locked};
        const auto before = memory.balances_seen.find(asset);
        const bool same = before != memory.balances_seen.end() && before->second.free == held.free &&
                          before->second.locked == held.locked;
        const auto cursor = memory.cursors.find(symbol);
        if (same && cursor != memory.cursors.end() && memory.unsettled.count(symbol) == 0) continue;
        std::int64_t& newest = seen.read_symbols.emplace(symbol, -1).first->second;
        moved = true;
        // Stores one trade read (a sell: whose order it filled is the
        // exchange's to say, by its client order id, once per order).
        const auto take = [&](const exchange::AccountTrade& t) {
          newest = std::max(newest, t.id);
          store::TradeRecord record{t.symbol,    t.id,         t.order_id,         t.is_buyer,           t.price, t.qty,
                                    t.quote_qty, t.commission, t.commission_asset, at_millis(t.time_ms), false};
          if (!t.is_buyer) {
            auto known = order_owner.find(t.order_id);
            if (known == order_owner.end()) {
              ++summary.requests;
              const auto order = value_or_throw(account_.order_by_id(symbol, t.order_id),
                                                "order " + std::to_string(t.order_id) + " of " + symbol);
              const bool backstops = order && order->client_order_id.rfind(options_.client_id_prefix, 0) == 0;
              known = order_owner.emplace(t.order_id, backstops).first;
            }
            record.ours = known->second;
          }
          seen.trades.push_back(std::move(record));
          ++summary.trades_read;
        };
        const auto read = [&](const exchange::TradesQuery& query) {
          ++summary.requests;
          return value_or_throw(account_.my_trades(symbol, query), "myTrades " + symbol);
        };
        exchange::TradesQuery query;
        if (cursor != memory.cursors.end() && cursor->second >= 0) {  // -1: read before, no trade yet
          // From the cursor on, by id, a page at a time.
          query.from_id = cursor->second + 1;
          for (;;) {
            const auto page = read(query);
            for (const exchange::AccountTrade& t : page) {
              take(t);
              query.from_id = std::max(*query.from_id, t.id + 1);
            }
            if (page.size() < static_cast<std::size_t>(query.limit)) break;
          }
          continue;
        }
        // The first time: the trades since the oldest entry's fills. Binance
        // serves a time window of at most 24 hours, and a position lives for
        // days: the most recent trades first (one call covers a symbol traded
        // fewer than 1,000 times since), then, only when they do not reach back
        // that far, day by day from the entry up to the oldest of them.
        const std::int64_t since = millis_of(first_opened - options_.entry_lookback);
        const auto recent = read(query);
        std::set<std::int64_t> taken;
        const auto keep = [&](const exchange::AccountTrade& t) {
          newest = std::max(newest, t.id);  // older ones too: the cursor passes them
          if (t.time_ms >= since && taken.insert(t.id).second) take(t);
        };
        const std::int64_t until =
            recent.empty() ? since : std::min_element(recent.begin(), recent.end(), [](const auto& a, const auto& b) {
                                       return a.time_ms < b.time_ms;
                                     })->time_ms;
        if (recent.size() >= static_cast<std::size_t>(query.limit) && until > since) {
          constexpr std::int64_t kDay = 86'400'000;
          for (std::int64_t from = since; from <= until; from += kDay) {
            exchange::TradesQuery day;
            day.start_time_ms = from;
            day.end_time_ms = std::min(from + kDay - 1, until);
            const auto trades = read(day);
            if (trades.size() >= static_cast<std::size_t>(day.limit)) {
              log::warn("more than 1,000 trades of a symbol in one day: the older of them are not read",
                        {{"account", options_.scope.account}, {"symbol", symbol}});
            }
            for (const exchange::AccountTrade& t : trades) keep(t);
          }
        }
        for (const exchange::AccountTrade& t : recent) keep(t);
      }
      if (summary.orphans_checked) {
        ++summary.requests;
        for (const exchange::OpenOrder& o : value_or_throw(account_.open_orders(std::nullopt), "openOrders")) {
          seen.open_orders.push_back({o.order.order_id, o.order.client_order_id, o.order.symbol, o.side, o.type,
                                      o.order.orig_qty, o.order.executed_qty});
        }
      }
      if (moved) {
        // The minimum notional decides what is dust; without prices only the
        // minimum quantity does.
        ++summary.requests;
        for (const auto& [symbol, quote] : value_or_throw(market_.prices(), "prices")) {
          seen.prices[symbol] = quote.last;
        }
      }
    } catch (const ExchangeFailure& f) {
      summary.error = f.message;
      if (f.refused_credentials) {
        const std::string why = "the exchange refused the account's credentials (" + f.message +
                                "): fix the API key, secret or its permissions; no operation was changed";
        record_failure(why);
        throw runtime::UsageError(why);
      }
      if (f.malformed) {
        summary.failed = true;
        record_failure(f.message);
      } else {
        summary.exchange_unreachable = true;
      }
      log::error("reconcile pass ended before any change", {{"account", options_.scope.account}, {"error", f.message}});
      return finish();
    }
  }

  // 3. One transaction: lock, read the exits, decide, append.
  try {
    store::UnitOfWork tx(connection_);
    store::ReconcileRepository::save_trades(tx, options_.scope.account, seen.trades, seen.read_symbols);
    core::TimePoint oldest = seen.read_at;
    for (const auto& [symbol, t] : memory.first_opened) oldest = std::min(oldest, t);
    store::LockedAccount locked = store::ReconcileRepository::lock(tx, options_.scope, oldest - options_.entry_lookback,
                                                                   seen.read_at - std::chrono::minutes(1));
    summary.skipped = locked.skipped;

    core::AccountObservation observation;
    observation.read_at = seen.read_at;
    for (const auto& [asset, b] : seen.account.balances) observation.balances[asset] = {b.free, b.locked};
    observation.trades = std::move(locked.trades);
    observation.open_orders = seen.open_orders;
    // A sell since an exit of its symbol went in flight may be that exit's
    // own fill, whose order id is not recorded yet: no evidence this pass.
    for (core::TradeSeen& t : observation.trades) {
      const auto since = locked.exits_in_flight_since.find(t.symbol);
      if (!t.is_buyer && !t.ours && since != locked.exits_in_flight_since.end() &&
          t.time >= since->second - std::chrono::minutes(1)) {
        t.attributed = true;
      }
    }
    core::ReconcileRules rules;
    rules.grace = options_.grace;
    rules.entry_lookback = options_.entry_lookback;
    rules.entry_margin = options_.entry_margin;
    rules.client_id_prefix = options_.client_id_prefix;
    rules.prices = seen.prices;
    for (const auto& [token, attempts] : locked.in_flight_attempts) {
      for (int n = 1; n <= attempts; ++n) rules.live_client_ids.insert(exchange::client_order_id(token, n));
    }
    // A finished exit's operation (FAILED: no exit follows) holds what that
    // exit left: its target less what it sold and found not held.
    std::vector<std::string> finished_exits;
    for (const store::LockedOperation& l : locked.operations) {
      if (l.op.exit && l.op.exit->finished()) finished_exits.push_back(l.exit_token);
    }
    const auto histories = store::MonitorRepository(connection_).exit_history(tx, finished_exits).facts;
    std::vector<core::ReconcileOperation> ops;
    std::vector<const store::LockedOperation*> of_op;
    std::vector<std::pair<const store::LockedOperation*, std::string>> unknown;  // not comparable: why
    for (const store::LockedOperation& l : locked.operations) {
      const auto r = seen.rules.find(l.op.symbol);
      if (l.op.side == core::Side::kBuy && (memory.first_opened.count(l.op.symbol) == 0)) {
        unknown.emplace_back(&l, "opened after the pass began");
        continue;
      }
      if (l.op.side == core::Side::kBuy && (r == seen.rules.end() || r->second.base_asset.empty())) {
        unknown.emplace_back(&l, "the exchange does not list " + l.op.symbol + " (no base asset to compare)");
        continue;
      }
      core::ReconcileOperation op = l.op;
      op.flagged_short = l.sync_status == core::SyncStatus::kShort;
      const auto history = histories.find(l.exit_token);
      if (history != histories.end()) {
        op.exit = core::fold_exit(history->second);
        op.quantity = std::max(Decimal(), std::min(op.quantity, op.exit->remaining()));
      }
      if (r != seen.rules.end()) {
        op.base_asset = r->second.base_asset;
        rules.lots[l.op.symbol] = exits::lot_rules(r->second);
      }
      ops.push_back(std::move(op));
      of_op.push_back(&l);
    }
    core::ReconcileResult result = core::reconcile_account(ops, observation, rules);

    // A wrong account mapping looks like every position gone at once: more
    // closures without a trade than --max-closures-pct of the account's
    // compared longs close none; they are flagged SHORT instead.
    std::int64_t compared = 0, gone = 0;
    for (const auto& d : result.operations) {
      if (d.outcome == SyncOutcome::kSkippedExitInFlight || d.outcome == SyncOutcome::kNotReconciled) continue;
      ++compared;
      if (d.outcome == SyncOutcome::kClosedElsewhere && d.reason == core::kBalanceGone) ++gone;
    }
    // A lone position whose asset is gone is closed (the uid check guards a
    // Secret that now reaches another account); from two on, the share counts.
    const bool hold_closures =
        gone >= 2 && gone * 100 > static_cast<std::int64_t>(options_.max_closures_pct) * compared;
    if (hold_closures) {
      log::warn("more positions look gone than --max-closures-pct allows: none is closed, all are flagged SHORT",
                {{"account", options_.scope.account},
                 {"gone", gone},
                 {"compared", compared},
                 {"max_closures_pct", options_.max_closures_pct}});
    }

    std::vector<core::Event> events;
    std::vector<store::SyncRecord> records;
    std::vector<DecisionReport*> report_of_event;
    summary.reports.reserve(result.operations.size() + unknown.size());
    for (std::size_t i = 0; i < result.operations.size(); ++i) {
      core::OperationDecision& d = result.operations[i];
      const store::LockedOperation& l = *of_op[i];
      ++summary.operations;
      if (hold_closures && d.outcome == SyncOutcome::kClosedElsewhere && d.reason == core::kBalanceGone) {
        d.outcome = SyncOutcome::kShortUnexplained;
        d.reason = std::string(core::kBalanceShort);
        d.new_quantity.reset();
        ++summary.held_back;
      }
      store::SyncRecord record;
      record.id = l.op.id.value;
      record.pending = d.pending;
      DecisionReport report;
      report.operation_id = l.op.id.value;
      report.tenant_id = l.tenant.value;
      report.symbol = l.op.symbol;
      report.outcome = std::string(core::to_string(d.outcome));
      report.reason = d.reason;
      report.quantity = l.op.quantity.to_string();
      report.held = d.held.to_string();
      report.trade_ids = d.trade_ids;
      const auto base = seen.account.balances.find(ops[i].base_asset);
      const json balance = base == seen.account.balances.end()
                               ? json{{"asset", ops[i].base_asset}, {"free", "0"}, {"locked", "0"}}
                               : json{{"asset", ops[i].base_asset},
                                      {"free", base->second.free.to_string()},
                                      {"locked", base->second.locked.to_string()}};
      json payload = {{"account", options_.scope.account}, {"previous_quantity", l.op.quantity.to_string()},
                      {"held", d.held.to_string()},        {"balance", balance},
                      {"trade_ids", d.trade_ids},          {"read_at", iso(seen.read_at)}};
      std::optional<core::Event> event;
      switch (d.outcome) {
        case SyncOutcome::kInSync:
          ++summary.in_sync;
          if (l.sync_status == core::SyncStatus::kShort) {
            event = sync_event(l, core::EventType::kPositionInSync,
                               "op" + std::to_string(l.op.id.value) + "-IS-" + std::to_string(l.sync_events));
          } else if (l.sync_status == core::SyncStatus::kUnchecked ||
                     l.sync_status == core::SyncStatus::kNotReconciled) {
            record.status = core::SyncStatus::kInSync;
          }
          break;
        case SyncOutcome::kReducedElsewhere:
        case SyncOutcome::kClosedElsewhere: {
          const bool closed = d.outcome == SyncOutcome::kClosedElsewhere;
          ++(closed ? summary.closed : summary.reduced);
          // What was compared (a failed exit's remainder, else the quantity)
          // is lowered by the decision; the operation by as much.
          const Decimal reduced_by = ops[i].quantity - d.new_quantity.value_or(Decimal());
          const Decimal after = closed ? Decimal() : l.op.quantity - reduced_by;
          event =
              sync_event(l, closed ? core::EventType::kPositionClosedExternally : core::EventType::kPositionReconciled,
                         "op" + std::to_string(l.op.id.value) + "-RC-" + after.to_string());
          event->quantity = after;
          event->reason = d.reason;
          payload["reduced_by"] = (closed ? ops[i].quantity : reduced_by).to_string();
          if (d.reason == core::kBalanceGone && l.op.pending) {
            payload["first_seen_at"] = iso(l.op.pending->first_seen);
            payload["seen"] = l.op.pending->seen + 1;
          }
          report.new_quantity = after.to_string();
          break;
        }
        case SyncOutcome::kShortUnexplained: {
          ++summary.short_flagged;
          const std::string text =
              "the account holds " + d.held.to_string() + " " + ops[i].base_asset + " for this position of " +
              l.op.quantity.to_string() + " and no trade explains the difference (balance " + balance.dump() +
              (hold_closures ? "; more positions of the account look gone than --max-closures-pct allows, so none "
                               "is closed: check which account the tenant's credentials reach"
                             : "") +
              "); an exit sells at most what the account holds when it fires";
          record.held = d.held;
          record.error = text;
          if (l.sync_status != core::SyncStatus::kShort) {
            event = sync_event(l, core::EventType::kPositionOutOfSync,
                               "op" + std::to_string(l.op.id.value) + "-OS-" + std::to_string(l.sync_events));
            event->quantity = d.held;
            event->reason = std::string(core::kBalanceShort);
            event->error_message = text;
            payload["expected"] = l.op.quantity.to_string();
            if (l.op.pending) payload["first_seen_at"] = iso(l.op.pending->first_seen);
          }
          break;
        }
        case SyncOutcome::kPending:
          ++summary.pending;
          break;
        case SyncOutcome::kSkippedExitInFlight:
          ++summary.in_flight;
          summary.reports.push_back(std::move(report));
          continue;  // R1: nothing written for it
        case SyncOutcome::kNotReconciled:
          ++summary.not_reconciled;
          record.status = core::SyncStatus::kNotReconciled;
          record.error = d.reason;
          break;
      }
      if (event) {
        event->payload = payload.dump();
        report.event = std::string(core::to_string(event->type));
        events.push_back(std::move(*event));
      }
      // A trade is used up only by the reduction or closure it backs.
      if (!d.trade_ids.empty() &&
          (d.outcome == SyncOutcome::kReducedElsewhere || d.outcome == SyncOutcome::kClosedElsewhere)) {
        store::ReconcileRepository::attribute(tx, options_.scope.account, l.op.id.value, d.trade_ids);
      }
      records.push_back(std::move(record));
      if (d.outcome != SyncOutcome::kInSync || !report.event.empty()) summary.reports.push_back(std::move(report));
    }
    for (const auto& [l, why] : unknown) {
      ++summary.operations;
      ++summary.not_reconciled;
      store::SyncRecord record;
      record.id = l->op.id.value;
      record.status = core::SyncStatus::kNotReconciled;
      record.error = why;
      records.push_back(std::move(record));
      DecisionReport report;
      report.operation_id = l->op.id.value;
      report.tenant_id = l->tenant.value;
      report.symbol = l->op.symbol;
      report.outcome = std::string(core::to_string(SyncOutcome::kNotReconciled));
      report.reason = why;
      report.quantity = l->op.quantity.to_string();
      summary.reports.push_back(std::move(report));
    }
    const store::AppendResult appended = store::EventStore::append(tx, events);
    summary.duplicates = static_cast<std::int64_t>(appended.duplicates.size());
    for (const core::Event& dup : appended.duplicates) {
      for (DecisionReport& r : summary.reports) {
        if (r.operation_id == dup.operation_id.value && r.event == core::to_string(dup.type)) {
          r.event = "duplicate: " + r.event;
        }
      }
    }
    store::ReconcileRepository::record_sync(tx, records);
    if (summary.orphans_checked) {
      store::ReconcileRepository::save_orphans(tx, options_.scope.account, result.orphans);
      for (const core::OpenOrderSeen& o : result.orphans) {
        summary.orphans.push_back({o.symbol, o.order_id, o.client_order_id, std::string(core::to_string(o.side)),
                                   o.type, o.orig.to_string(), ""});
      }
    }
    if (read_exchange) {
      std::map<std::string, core::HeldBalance> balances;
      for (const auto& [asset, b] : seen.account.balances) balances[asset] = {b.free, b.locked};
      store::ReconcileRepository::record_pass(tx, options_.scope.account, seen.account.uid, seen.account.account_type,
                                              balances, summary.orphans_checked);
    }
    if (options_.dry_run) {
      tx.abort();
    } else {
      tx.commit();
      if (options_.cancel_orphans) cancel_orphans(summary);
    }
  } catch (const pqxx::sql_error& e) {
    // The database refused a write (the R1 trigger, a check): nothing of
    // the pass was kept.
    if (store::is_lost_connection(e)) throw;
    summary.failed = true;
    summary.error = std::string("the database refused the pass: ") + e.what();
    log::error("reconcile pass rolled back", {{"account", options_.scope.account}, {"error", summary.error}});
    record_failure(summary.error);
  }
  return finish();
}

}  // namespace backstop::reconcile

#include "trailing/trailing_stop.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>

#include "feed/price_feed.h"
#include "runtime/log.h"
#include "runtime/progress.h"
#include "store/event_store.h"

namespace backstop::trailing {
namespace {

using core::Decimal;

struct Decision {
  std::optional<core::StopAdjustment> adjustment;
  core::TrailingMode mode = core::TrailingMode::kHandSpan;
  std::optional<Decimal> price;
  store::TrailState state;
  bool duplicate = false;  // the adjustment's token was taken before
};

// The pure part of one row: its rule, its move at `price` (if any) and its
// next wake price, or why it cannot trail.
Decision decide(const store::TrailingRow& row, const std::optional<Decimal>& price) {
  Decision d;
  d.state.id = row.id.value;
  d.price = price;
  try {
    if (!row.side) throw core::TrailingError("side is missing or not BUY/SELL");
    if (!row.entry) throw core::TrailingError("average_entry_price is missing");
    if (!row.stop) throw core::TrailingError("stop_price is missing");
    const auto rule = core::effective_rule({row.mode, row.offset, row.activation_price, row.tenant_mode,
                                            row.tenant_offset, row.fee_pct, row.slippage_buffer_pct});
    if (!rule) throw core::TrailingError("trailing is not enabled for this operation");
    core::TrailingPosition position{*row.side, *row.entry, row.initial_stop.value_or(*row.stop), *row.stop};
    core::validate(*rule, position);
    d.mode = rule->mode;
    if (price) d.adjustment = core::trail(*rule, position, *price);
    if (d.adjustment) {
      position.stop = d.adjustment->new_stop;
      if (!row.initial_stop) d.state.initial_stop = *row.stop;
    }
    d.state.wake_price = core::wake_price(*rule, position);
  } catch (const core::TrailingError& e) {
    d.adjustment.reset();
    d.state.wake_price.reset();
    d.state.initial_stop.reset();
    d.state.error = e.what();
  }
  return d;
}

core::Event adjusted_event(const store::TrailingRow& row, const Decision& d, core::EventSource source) {
  const core::StopAdjustment& a = *d.adjustment;
  core::Event e;
  e.operation_id = row.id;
  e.tenant_id = row.tenant;
  e.symbol = row.symbol;
  e.type = core::EventType::kStopAdjusted;
  e.source = source;
  e.execution_token = core::adjustment_token(row.id, d.mode, a);
  e.trigger_price = d.price;
  e.stop_price = a.new_stop;
  e.reason = std::string(core::to_string(a.reason));
  nlohmann::json payload = {{"mode", core::to_string(d.mode)},
                            {"old_stop", a.old_stop.to_string()},
                            {"new_stop", a.new_stop.to_string()},
                            {"position_side", core::to_string(*row.side)},
                            {"initial_stop", row.initial_stop.value_or(a.old_stop).to_string()}};
  if (d.mode == core::TrailingMode::kHandSpan) payload["step"] = a.step;
  if (d.state.wake_price) payload["next_wake_price"] = d.state.wake_price->to_string();
  e.payload = payload.dump();
  return e;
}

AdjustmentReport report_of(const store::TrailingRow& row, const Decision& d, std::string outcome) {
  AdjustmentReport r;
  r.operation_id = row.id.value;
  r.tenant_id = row.tenant.value;
  r.symbol = row.symbol;
  r.side = row.side ? std::string(core::to_string(*row.side)) : "";
  r.mode = std::string(core::to_string(d.mode));
  r.old_stop = row.stop ? row.stop->to_string() : "";
  if (d.adjustment) {
    r.new_stop = d.adjustment->new_stop.to_string();
    r.reason = std::string(core::to_string(d.adjustment->reason));
    r.step = d.adjustment->step;
    r.token = core::adjustment_token(row.id, d.mode, *d.adjustment);
  }
  r.price = d.price ? d.price->to_string() : "";
  r.outcome = std::move(outcome);
  return r;
}

}  // namespace

void accumulate(TrailingSummary& total, const TrailingSummary& pass) {
  total.symbols = std::max(total.symbols, pass.symbols);
  total.due += pass.due;
  total.armed += pass.armed;
  total.adjusted += pass.adjusted;
  total.duplicates += pass.duplicates;
  total.in_flight += pass.in_flight;
  total.skipped += pass.skipped;
  total.invalid += pass.invalid;
  total.malformed_frames += pass.malformed_frames;
  total.reports.insert(total.reports.end(), pass.reports.begin(), pass.reports.end());
  total.seconds += pass.seconds;
  if (pass.price_error) {
    total.price_error = true;
    total.error = pass.error;
  }
}

TrailingStop::TrailingStop(store::Connection& connection, exchange::Exchange& exchange, TrailingOptions options)
    : connection_(connection), exchange_(exchange), options_(std::move(options)) {}

TrailingSummary TrailingStop::run_pass() {
  const auto start = std::chrono::steady_clock::now();
  TrailingSummary summary;
  auto prices = exchange_.prices();
  const core::TimePoint received = std::chrono::system_clock::now();
  if (!prices.ok()) {
    // Without prices nothing can move, but new rows still get their wake price.
    summary.price_error = true;
    summary.error = "price snapshot failed: " + prices.error().describe();
    log::error("price snapshot failed; only computing wake prices", {{"error", prices.error().describe()}});
    run({}, received, true, summary);
  } else {
    run(prices.value(), received, true, summary);
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

TrailingSummary TrailingStop::run_on_prices(const core::PriceSnapshot& prices, core::TimePoint received) {
  const auto start = std::chrono::steady_clock::now();
  TrailingSummary summary;
  run(prices, received, false, summary);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

void TrailingStop::run(const core::PriceSnapshot& prices, core::TimePoint received, bool unarmed,
                       TrailingSummary& summary) {
  std::vector<store::SymbolPrice> symbol_prices;
  const auto age = std::chrono::system_clock::now() - received;
  if (age > options_.max_price_age) {
    log::warn("prices too old to trail on; only computing wake prices",
              {{"age_ms", std::chrono::duration_cast<std::chrono::milliseconds>(age).count()}});
  } else {
    symbol_prices = feed::symbol_prices(prices, options_.filter, options_.price_source);
  }
  std::map<std::string, store::SymbolPrice> by_symbol;
  for (const auto& p : symbol_prices) by_symbol.emplace(p.symbol, p);
  summary.symbols = static_cast<std::int64_t>(symbol_prices.size());
  std::vector<std::int64_t> due;
  {
    store::ReadOnlyWork tx(connection_);
    due = store::TrailingRepository::due(tx, symbol_prices, options_.filter, unarmed);
  }
  summary.due = static_cast<std::int64_t>(due.size());
  // A REST pass over a large book (the first, computing every wake price)
  // runs for minutes: it says how far it is. A stream's tick is short work.
  std::optional<runtime::Progress> progress;
  if (unarmed) progress.emplace("trailing-stop", "operations", summary.due);
  for (std::size_t at = 0; at < due.size(); at += options_.batch_size) {
    const std::vector<std::int64_t> ids(
        due.begin() + static_cast<std::ptrdiff_t>(at),
        due.begin() + static_cast<std::ptrdiff_t>(std::min(due.size(), at + options_.batch_size)));
    batch(ids, by_symbol, summary);
    if (progress) progress->add(static_cast<std::int64_t>(ids.size()));
  }
}

void TrailingStop::batch(const std::vector<std::int64_t>& ids, const std::map<std::string, store::SymbolPrice>& prices,
                         TrailingSummary& summary) {
  auto price_for = [&](const store::TrailingRow& row) -> std::optional<Decimal> {
    const auto it = prices.find(row.symbol);
    if (it == prices.end() || !row.side) return std::nullopt;
    return *row.side == core::Side::kBuy ? it->second.long_exit : it->second.short_exit;
  };
  if (options_.dry_run) {
    store::ReadOnlyWork tx(connection_);
    for (const store::TrailingRow& row : store::TrailingRepository::read(tx, ids)) {
      const Decision d = decide(row, price_for(row));
      if (d.state.error) {
        ++summary.invalid;
        summary.reports.push_back(report_of(row, d, "invalid: " + *d.state.error));
      } else if (d.adjustment) {
        ++summary.adjusted;
        summary.reports.push_back(report_of(row, d, "dry-run"));
      } else {
        ++summary.armed;
      }
    }
    return;
  }

  store::UnitOfWork tx(connection_);
  const store::LockedRows locked = store::TrailingRepository::lock(tx, ids);
  summary.in_flight += static_cast<std::int64_t>(locked.in_flight.size());
  summary.skipped += static_cast<std::int64_t>(locked.skipped.size());
  std::vector<Decision> decisions;
  std::vector<core::Event> events;
  std::map<std::string, std::size_t> by_token;  // event token -> decision
  for (const store::TrailingRow& row : locked.rows) {
    decisions.push_back(decide(row, price_for(row)));
    const Decision& d = decisions.back();
    if (d.adjustment) {
      events.push_back(adjusted_event(row, d, options_.source));
      by_token[events.back().execution_token] = decisions.size() - 1;
    }
  }
  const store::AppendResult appended = store::EventStore::append(tx, std::move(events));
  for (const core::Event& e : appended.duplicates) {
    // The step was made before and the stop has been set back by hand since:
    // moving it again under the same token is impossible, and trying on every
    // pass would be noise. Trailing resumes when the stop or the rule changes.
    Decision& d = decisions[by_token.at(e.execution_token)];
    const store::TrailingRow& row = locked.rows[by_token.at(e.execution_token)];
    ++summary.duplicates;
    summary.reports.push_back(report_of(row, d, "duplicate"));
    log::warn("adjustment already made before; not moving the stop again",
              {{"operation_id", row.id.value}, {"execution_token", e.execution_token}});
    d.state.wake_price.reset();
    d.state.initial_stop.reset();
    d.state.error = "adjustment " + e.execution_token + " was made before and the stop (" + row.stop->to_string() +
                    ") was set back since; trailing resumes when the stop or the rule changes";
    d.adjustment.reset();
    d.duplicate = true;
  }
  std::vector<store::TrailState> states;
  for (std::size_t i = 0; i < decisions.size(); ++i) {
    const Decision& d = decisions[i];
    const store::TrailingRow& row = locked.rows[i];
    states.push_back(d.state);
    if (d.adjustment) {
      ++summary.adjusted;
      summary.reports.push_back(report_of(row, d, "adjusted"));
    } else if (d.duplicate) {
      continue;  // reported above
    } else if (d.state.error) {
      ++summary.invalid;
      summary.reports.push_back(report_of(row, d, "invalid: " + *d.state.error));
      log::warn("operation cannot trail", {{"operation_id", row.id.value}, {"reason", *d.state.error}});
    } else {
      ++summary.armed;
    }
  }
  store::TrailingRepository::save(tx, states);
  tx.commit();
}

}  // namespace backstop::trailing

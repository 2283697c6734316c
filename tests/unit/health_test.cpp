// The probes' rules (runtime/health.h), with the time passed in: live while
// every loop came round recently, ready while the last REST pass read prices
// recently; a stuck loop or an exchange that stopped answering shows.
#include "runtime/health.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace backstop::runtime {
namespace {

using namespace std::chrono_literals;
const Health::Clock::time_point kT0 = Health::Clock::time_point{} + 1000h;

TEST(Health, NotReadyBeforeAPassReadPricesThenReadyWhileItKeepsDoingSo) {
  Health h(60s, 15s);
  h.beat("driver", kT0);
  EXPECT_TRUE(h.live(kT0).ok);
  EXPECT_FALSE(h.ready(kT0).ok);  // no pass yet
  h.pass_finished(false, kT0 + 1s);
  EXPECT_FALSE(h.ready(kT0 + 1s).ok);  // the exchange did not answer
  h.pass_finished(true, kT0 + 2s);
  h.beat("driver", kT0 + 2s);
  EXPECT_TRUE(h.ready(kT0 + 2s).ok);
  EXPECT_TRUE(h.ready(kT0 + 17s).ok);
  // Passes keep failing: not ready once the last good one is older than 15 s, still live.
  h.beat("driver", kT0 + 18s);
  h.pass_finished(false, kT0 + 18s);
  EXPECT_FALSE(h.ready(kT0 + 18s).ok);
  EXPECT_TRUE(h.live(kT0 + 18s).ok);
  const auto body = nlohmann::json::parse(h.ready(kT0 + 18s).body);
  EXPECT_EQ(body["last_good_pass_seconds_ago"], 16.0);
  EXPECT_EQ(body["last_failed_pass_seconds_ago"], 0.0);
  EXPECT_EQ(body["ok"], false);
}

TEST(Health, ALoopThatStopsComingRoundIsNotLiveNorReady) {
  Health h(60s, 15s);
  h.beat("stream", kT0);
  h.beat("driver", kT0);
  h.pass_finished(true, kT0);
  h.beat("stream", kT0 + 61s);  // the driver hangs
  h.pass_finished(true, kT0 + 61s);
  EXPECT_FALSE(h.live(kT0 + 61s).ok);
  EXPECT_FALSE(h.ready(kT0 + 61s).ok);
  const auto body = nlohmann::json::parse(h.live(kT0 + 61s).body);
  EXPECT_EQ(body["loops_seconds_ago"]["driver"], 61.0);
  EXPECT_EQ(body["loops_seconds_ago"]["stream"], 0.0);
  h.beat("driver", kT0 + 62s);
  EXPECT_TRUE(h.live(kT0 + 62s).ok);
}

TEST(Health, TheStreamsStateIsShown) {
  Health h(60s, 15s);
  h.stream_state("reconnecting");
  EXPECT_EQ(nlohmann::json::parse(h.live(kT0).body)["stream"], "reconnecting");
}

}  // namespace
}  // namespace backstop::runtime

// Orders per second and client CPU per order against a running exchange
// simulator: one at a time, then K at a time (place_market_orders), then
// keep-alive queries for comparison.
// Usage: order_bench <base-url> <orders> [in-flight K, default 8]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "exchange/binance_client.h"
#include "net/http.h"

namespace {

double cpu_seconds() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
         static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

template <typename F>
void measure(const char* label, int n, F&& body) {
  const auto start = std::chrono::steady_clock::now();
  const double cpu = cpu_seconds();
  if (!body()) std::exit(1);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%-40s %8.0f /s   %.3f ms CPU each\n", label, n / wall, (cpu_seconds() - cpu) * 1000 / n);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace backstop;
  if (argc < 3) {
    std::fprintf(stderr, "usage: order_bench <base-url> <orders> [in-flight]\n");
    return 2;
  }
  const int n = std::atoi(argv[2]);
  const int k = argc > 3 ? std::atoi(argv[3]) : 8;
  net::configure_http_threads(1);
  exchange::BinanceConfig config;
  config.base_url = argv[1];
  config.api_key = "bench";
  config.api_secret = "bench-secret";
  exchange::BinanceClient client(config, net::make_cpprest_transport(config.base_url, config.timeout));
  const std::string run = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  auto order = [&](int i) {
    return exchange::OrderRequest{"SYM1", core::Side::kSell, core::Decimal::parse("0.001"),
                                  "ob" + run.substr(run.size() - 12) + "-" + std::to_string(i)};
  };
  measure("orders, one at a time", n, [&] {
    for (int i = 0; i < n; ++i) {
      auto r = client.place_market_order(order(i));
      if (!r.ok()) return std::fprintf(stderr, "%s\n", r.error().describe().c_str()), false;
    }
    return true;
  });
  measure(("orders, " + std::to_string(k) + " in flight").c_str(), n, [&] {
    for (int i = 0; i < n; i += k) {
      std::vector<exchange::OrderRequest> group;
      for (int j = i; j < std::min(n, i + k); ++j) group.push_back(order(n + j));
      for (const auto& r : client.place_market_orders(group)) {
        if (!r.ok()) return std::fprintf(stderr, "%s\n", r.error().describe().c_str()), false;
      }
    }
    return true;
  });
  measure("queries, keep-alive, one at a time", n, [&] {
    for (int i = 0; i < n; ++i) {
      if (!client.query_order("SYM1", order(i).client_order_id).ok()) return false;
    }
    return true;
  });
}

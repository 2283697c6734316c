#include <sys/resource.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include "exchange/binance_client.h"
#include "exchange/http.h"
using namespace backstop;
static double cpu() { rusage r; getrusage(RUSAGE_SELF, &r); return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6; }
int main(int argc, char** argv) {
  const int n = atoi(argv[2]);
  exchange::configure_http_threads(argc > 3 ? static_cast<std::size_t>(atoi(argv[3])) : 1);
  exchange::BinanceConfig cfg; cfg.base_url = argv[1]; cfg.api_key = "bench"; cfg.api_secret = "bench-secret";
  exchange::BinanceClient client(cfg, exchange::make_cpprest_transport(cfg.base_url, std::chrono::milliseconds(5000)));
  auto t0 = std::chrono::steady_clock::now(); double c0 = cpu();
  for (int i = 0; i < n; ++i) {
    auto r = client.place_market_order({"SYM1", core::Side::kSell, core::Decimal::parse("0.001"), "ob" + std::to_string(i) + "x" + std::to_string(rand())});
    if (!r.ok()) { fprintf(stderr, "%s\n", r.error().describe().c_str()); return 1; }
  }
  double w = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("orders: %.0f/s wall, %.3f ms cpu each\n", n / w, (cpu() - c0) * 1000 / n);
  t0 = std::chrono::steady_clock::now(); c0 = cpu();
  for (int i = 0; i < n; ++i) { auto r = client.query_order("SYM1", "nonexistent"); }
  w = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  printf("queries (keep-alive GET): %.0f/s wall, %.3f ms cpu each\n", n / w, (cpu() - c0) * 1000 / n);
}

// reconcile_baseline: the REST calls of one reconcile pass, made by a bare
// signed client with no database: exchangeInfo, the account, and myTrades of
// each symbol given (none: a quiet pass). The floor the reconcile bench
// (./dev bench --only 10) compares one `reconcile --account` process with.
//   reconcile_baseline URL API_KEY API_SECRET [SYMBOL...]
// Exit 0 when every call answered, 1 otherwise.
#include <cstdio>
#include <string>

#include "exchange/binance_client.h"
#include "net/http.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: reconcile_baseline URL API_KEY API_SECRET [SYMBOL...]\n");
    return 2;
  }
  backstop::net::configure_http_threads(1);  // as every binary
  backstop::exchange::BinanceConfig config;
  config.base_url = argv[1];
  config.api_key = argv[2];
  config.api_secret = argv[3];
  backstop::exchange::BinanceClient client(config,
                                           backstop::net::make_cpprest_transport(config.base_url, config.timeout));
  if (!client.rules().ok() || !client.account().ok()) return 1;
  for (int i = 4; i < argc; ++i) {
    backstop::exchange::TradesQuery query;
    query.from_id = 1;
    if (!client.my_trades(argv[i], query).ok()) return 1;
  }
  return 0;
}

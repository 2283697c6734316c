// Decimal money operations beside the binary floating point they replace
// (the baseline a careless implementation would use), same inputs, same run.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/backfill.h"
#include "core/decimal.h"

namespace {

using backstop::core::Decimal;
using backstop::core::Rounding;

const std::vector<std::string>& prices() {
  static const std::vector<std::string> values = [] {
    std::vector<std::string> v;
    for (int i = 0; i < 1024; ++i) v.push_back(std::to_string(90000 + i * 7) + "." + std::to_string(10000000 + i * 3));
    return v;
  }();
  return values;
}

void BM_DecimalParse(benchmark::State& state) {
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(Decimal::parse(prices()[i++ & 1023]));
}
BENCHMARK(BM_DecimalParse);

void BM_BaselineStrtod(benchmark::State& state) {
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(std::strtod(prices()[i++ & 1023].c_str(), nullptr));
}
BENCHMARK(BM_BaselineStrtod);

void BM_DecimalStopFromPercent(benchmark::State& state) {
  const Decimal entry = Decimal::parse("95000.12345678"), pct = Decimal::parse("2.125");
  for (auto _ : state) {
    benchmark::DoNotOptimize(backstop::core::stop_from_percent(backstop::core::Side::kBuy, entry, pct));
  }
}
BENCHMARK(BM_DecimalStopFromPercent);

void BM_BaselineDoubleStopFromPercent(benchmark::State& state) {
  volatile double entry = 95000.12345678, pct = 2.125;
  for (auto _ : state) benchmark::DoNotOptimize(entry * (1 - pct / 100));
}
BENCHMARK(BM_BaselineDoubleStopFromPercent);

void BM_DecimalFormat(benchmark::State& state) {
  const Decimal value = Decimal::parse("93100.12345678");
  for (auto _ : state) benchmark::DoNotOptimize(value.to_string());
}
BENCHMARK(BM_DecimalFormat);

void BM_BaselineDoubleFormat(benchmark::State& state) {
  volatile double value = 93100.12345678;
  for (auto _ : state) benchmark::DoNotOptimize(std::to_string(value));
}
BENCHMARK(BM_BaselineDoubleFormat);

}  // namespace

BENCHMARK_MAIN();

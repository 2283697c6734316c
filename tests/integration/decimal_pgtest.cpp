// Decimal against PostgreSQL NUMERIC(20,8): exact round trips through
// parameters and results, and the same half-up rounding as the server.
#include <gtest/gtest.h>

#include <random>

#include "store/db.h"
#include "support/pg.h"

namespace backstop::testing {
namespace {

using core::Decimal;

TEST(DecimalNumeric, RoundTripsThroughNumeric20_8) {
  TestDatabase db;
  auto connection = db.connect();
  pqxx::work tx(*connection);
  tx.exec("CREATE TEMP TABLE money (v numeric(20,8))");
  for (const char* text : {"0", "0.00000001", "-0.00000001", "93100", "999999999999.99999999", "-999999999999.99999999",
                           "0.61234567", "123456789012.12345678"}) {
    SCOPED_TRACE(text);
    const Decimal value = Decimal::parse(text);
    tx.exec_params("INSERT INTO money VALUES ($1)", value);
    const pqxx::row row = tx.exec_params1("SELECT v, v::text FROM money WHERE v = $1", value);
    EXPECT_EQ(row[0].as<Decimal>(), value);
    EXPECT_EQ(row[1].as<std::string>(), value.to_fixed_string());
  }
  // NULL reads as an empty optional (libpqxx 6 with PQXX_HAVE_OPTIONAL).
  const pqxx::row null_row = tx.exec1("SELECT NULL::numeric(20,8)");
  EXPECT_FALSE(store::decimal_or_null(null_row[0]).has_value());
  EXPECT_FALSE(null_row[0].as<std::optional<std::string>>().has_value());
  // The server refuses what Decimal refuses.
  EXPECT_THROW(tx.exec("SELECT 1000000000000::numeric(20,8)"), pqxx::data_exception);
}

TEST(DecimalNumeric, RoundsExtraDigitsExactlyLikeTheServer) {
  TestDatabase db;
  auto connection = db.connect();
  pqxx::work tx(*connection);
  std::mt19937_64 random(42);
  std::string values = "{";
  std::vector<std::string> texts;
  for (int i = 0; i < 5000; ++i) {
    std::string text = (random() % 2 ? "-" : "") + std::to_string(random() % 1000000) + ".";
    const int digits = 9 + static_cast<int>(random() % 6);
    for (int d = 0; d < digits; ++d) text += static_cast<char>('0' + random() % 10);
    if (i % 7 == 0) text.replace(text.size() - 1, 1, "5");  // force exact ties often
    if (i % 7 == 0) text.replace(text.size() - 2, 1, "0");
    texts.push_back(text);
    values += (i ? "," : "") + text;
  }
  values += "}";
  const pqxx::result rows = tx.exec_params(
      "SELECT v::numeric(20,8) FROM unnest($1::numeric[]) WITH ORDINALITY AS u(v, n) ORDER BY n", values);
  ASSERT_EQ(rows.size(), texts.size());
  for (std::size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ(Decimal::parse_rounded(texts[i], core::Rounding::kHalfUp), rows[i][0].as<Decimal>()) << texts[i];
  }
}

}  // namespace
}  // namespace backstop::testing

// Name tables for enums stored as text (database columns, JSON, logs): one
// table per enum, looked up both ways by these two helpers.
#pragma once

#include <array>
#include <optional>
#include <string_view>
#include <utility>

namespace backstop::core {

template <typename Enum, std::size_t N>
using NameTable = std::array<std::pair<Enum, std::string_view>, N>;

template <typename Enum, std::size_t N>
constexpr std::string_view name_of(const NameTable<Enum, N>& table, Enum value) {
  for (const auto& [candidate, name] : table) {
    if (candidate == value) return name;
  }
  return "UNKNOWN";
}

template <typename Enum, std::size_t N>
constexpr std::optional<Enum> value_of(const NameTable<Enum, N>& table, std::string_view text) {
  for (const auto& [candidate, name] : table) {
    if (name == text) return candidate;
  }
  return std::nullopt;
}

}  // namespace backstop::core

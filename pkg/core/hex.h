// Lower-case hexadecimal of bytes (digests, signatures).
#pragma once

#include <cstddef>
#include <string>

namespace backstop::core {

inline std::string to_hex(const unsigned char* bytes, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (std::size_t i = 0; i < size; ++i) {
    hex += kHex[bytes[i] >> 4];
    hex += kHex[bytes[i] & 0xF];
  }
  return hex;
}

}  // namespace backstop::core

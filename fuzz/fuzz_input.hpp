#pragma once
// Shared by the fuzz targets: an input as text, and split into parts.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string_view>

namespace blip::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// The text before the first newline (consumed with it from `rest`), or all of it.
inline std::string_view take_line(std::string_view& rest) {
  const size_t newline = rest.find('\n');
  const std::string_view line = rest.substr(0, newline);
  rest = newline == std::string_view::npos ? std::string_view() : rest.substr(newline + 1);
  return line;
}

// Stops the run with a message libFuzzer keeps with the input: a broken contract, not a crash.
// On stderr, which is unbuffered: stdout's buffer would die with the trap.
[[noreturn]] inline void contract_broken(const char* what) {
  std::fprintf(stderr, "contract broken: %s\n", what);
  __builtin_trap();
}

}  // namespace blip::fuzz

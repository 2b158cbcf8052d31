#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "blip/core/clock.hpp"

namespace blip::test {

// A time written as blip writes times (ISO 8601, UTC), in ms since the epoch; a
// test failure if `text` is not one.
inline int64_t at(const std::string& text) {
  int64_t ms = 0;
  EXPECT_TRUE(parse_iso8601_ms(text, ms)) << text;
  return ms;
}

}  // namespace blip::test

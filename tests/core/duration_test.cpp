// Durations as probes.d and the reports spell them: parsed with every unit,
// rejected with the message `blip check` shows, formatted back exactly and briefly.
#include "blip/core/duration.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

namespace blip {
namespace {

TEST(DurationTest, ParsesEveryUnitAndSums) {
  const std::pair<const char*, int64_t> cases[] = {
      {"250ms", 250},      {"2s", 2'000},     {"5m", 300'000}, {"1h", 3'600'000},
      {"7d", 604'800'000}, {"1m30s", 90'000}, {"0s", 0},
  };
  for (const auto& [text, ms] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(parse_duration_ms(text), std::optional<int64_t>(ms));
  }
}

TEST(DurationTest, RejectsWhatIsNotADuration) {
#define HINT " (write whole numbers with a unit: 250ms, 2s, 5m, 1h, 7d)"
  const std::pair<const char*, const char*> cases[] = {
      {"", "invalid duration \"\": empty" HINT},
      {"5", "invalid duration \"5\": missing unit" HINT},
      {"ms", "invalid duration \"ms\": expected a number" HINT},
      {"-1s", "invalid duration \"-1s\": expected a number" HINT},
      {"1.5s", "invalid duration \"1.5s\": unknown unit \".\"" HINT},
      {"2w", "invalid duration \"2w\": unknown unit \"w\"" HINT},
      {"99999999d", "invalid duration \"99999999d\": too large" HINT},
  };
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(text);
    std::string error;
    EXPECT_EQ(parse_duration_ms(text, &error), std::nullopt);
    EXPECT_EQ(error, message);
  }
#undef HINT
}

TEST(DurationTest, FormatsTheShortestExactSpellingThatParsesBack) {
  const std::pair<int64_t, const char*> cases[] = {
      {0, "0s"},
      {250, "250ms"},
      {2'000, "2s"},
      {90'000, "1m30s"},
      {3'600'000, "1h"},
      {604'800'000, "7d"},
      {90'061'001, "1d1h1m1s1ms"},
  };
  for (const auto& [ms, text] : cases) {
    SCOPED_TRACE(text);
    EXPECT_EQ(format_duration_ms(ms), text);
    EXPECT_EQ(parse_duration_ms(format_duration_ms(ms)), std::optional<int64_t>(ms));
  }
}

TEST(DurationTest, BriefFormatForReports) {
  EXPECT_EQ(format_duration_brief(2788), "2.79s");
  EXPECT_EQ(format_duration_brief(27'840), "27.8s");
  EXPECT_EQ(format_duration_brief(272'000), "4m32s");
  EXPECT_EQ(format_duration_brief(7'500'000), "2h05m");
  EXPECT_EQ(format_duration_brief(3 * 86'400'000 + 4 * 3'600'000), "3d04h");
}

}  // namespace
}  // namespace blip

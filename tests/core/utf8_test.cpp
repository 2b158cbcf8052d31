// The one UTF-8 reader the log's escaper and the badges' XML share.
#include "blip/core/utf8.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace blip {
namespace {

std::vector<char32_t> read_all(std::string_view text) {
  std::vector<char32_t> points;
  for (size_t at = 0; at < text.size();) {
    const CodePoint point = next_code_point(text, at);
    if (!point.valid) {
      EXPECT_EQ(point.length, 1u);
    }
    points.push_back(point.value);
    at += point.length;
  }
  return points;
}

TEST(Utf8, ReadsEachLengthAndWritesItBack) {
  const std::string text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  EXPECT_EQ(read_all(text), (std::vector<char32_t>{U'a', 0xE9, 0x20AC, 0x1F600}));
  std::string written;
  for (char32_t code : read_all(text)) append_utf8(written, code);
  EXPECT_EQ(written, text);
}

TEST(Utf8, EachBrokenFormIsOneByteOfReplacement) {
  const char32_t r = kReplacementCharacter;
  EXPECT_EQ(read_all("\x80z"), (std::vector<char32_t>{r, U'z'})) << "a stray continuation byte";
  EXPECT_EQ(read_all("\xC0\xAF"), (std::vector<char32_t>{r, r})) << "an overlong '/'";
  EXPECT_EQ(read_all("\xE0\x80\xAF"), (std::vector<char32_t>{r, r, r})) << "overlong, 3 bytes";
  EXPECT_EQ(read_all("\xED\xA0\x80"), (std::vector<char32_t>{r, r, r})) << "a surrogate";
  EXPECT_EQ(read_all("\xF4\x90\x80\x80"), (std::vector<char32_t>{r, r, r, r})) << "past U+10FFFF";
  EXPECT_EQ(read_all("\xE2\x82"), (std::vector<char32_t>{r, r})) << "cut short";
  EXPECT_EQ(read_all("\xF8\x88\x80\x80\x80").size(), 5u) << "a 5-byte lead";
}

}  // namespace
}  // namespace blip

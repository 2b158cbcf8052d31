#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace blip {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;

// One code point read from UTF-8 text, and how many bytes it took.
struct CodePoint {
  char32_t value = kReplacementCharacter;
  size_t length = 1;
  bool valid = false;  // false: a broken sequence, read as one byte of U+FFFD
};

// The code point of `text` at byte `at` (< text.size()). Broken UTF-8 (a stray byte, an
// overlong form, a surrogate, past U+10FFFF, a sequence cut short) is one byte of U+FFFD.
CodePoint next_code_point(std::string_view text, size_t at);

// `code` (at most U+10FFFF, not a surrogate) as UTF-8.
void append_utf8(std::string& out, char32_t code);

}  // namespace blip

#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace blip {

// The numbers of std::mt19937_64, in the same order from the same seed, made
// without a branch on each word's low bit: libstdc++'s refill branches on it,
// which the processor guesses wrong half the time. The pattern search's
// Monte Carlo test draws millions (src/analysis/pattern.cpp); tests compare
// the two engines word for word.
class MersenneTwister64 {
 public:
  using result_type = uint64_t;
  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  explicit MersenneTwister64(uint64_t seed) {
    state_[0] = seed;
    for (size_t i = 1; i < kWords; ++i) {
      state_[i] = 6364136223846793005ULL * (state_[i - 1] ^ (state_[i - 1] >> 62)) + i;
    }
  }

  result_type operator()() {
    if (next_ >= kWords) refill();
    uint64_t z = state_[next_++];
    z ^= (z >> 29) & 0x5555555555555555ULL;
    z ^= (z << 17) & 0x71d67fffeda60000ULL;
    z ^= (z << 37) & 0xfff7eee000000000ULL;
    return z ^ (z >> 43);
  }

 private:
  static constexpr size_t kWords = 312;
  static constexpr size_t kShift = 156;
  static constexpr uint64_t kUpper = ~uint64_t{0} << 31;
  static constexpr uint64_t kLower = ~kUpper;
  static constexpr uint64_t kMatrix = 0xb5026f5aa96619e9ULL;

  static uint64_t twist(uint64_t high, uint64_t low, uint64_t far) {
    const uint64_t y = (high & kUpper) | (low & kLower);
    return far ^ (y >> 1) ^ ((0 - (y & 1)) & kMatrix);
  }
  void refill() {
    for (size_t k = 0; k < kWords - kShift; ++k)
      state_[k] = twist(state_[k], state_[k + 1], state_[k + kShift]);
    for (size_t k = kWords - kShift; k < kWords - 1; ++k)
      state_[k] = twist(state_[k], state_[k + 1], state_[k + kShift - kWords]);
    state_[kWords - 1] = twist(state_[kWords - 1], state_[0], state_[kShift - 1]);
    next_ = 0;
  }

  std::array<uint64_t, kWords> state_{};
  size_t next_ = kWords;
};

}  // namespace blip

// The feed's rebuild (FeedHistoryReader) a second apart over a stored history, as `blip run`
// does every second: its wall and CPU time, and how many pattern searches ran. Within a minute an
// unchanged history should run none after the first (issue 22).
//   build/bench/feed_rebuild HISTORY.db
#include <fmt/format.h>

#include <chrono>
#include <ctime>

#include "blip/core/clock.hpp"
#include "blip/feed/history.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: feed_rebuild HISTORY.db\n");
    return 2;
  }
  blip::FeedHistoryReader reader(argv[1]);
  const int64_t now = blip::wall_now_ms();
  const int64_t minute = now - now % 60'000;
  // Six rebuilds a second apart in one minute, then six in the next.
  for (int i = 0; i < 12; ++i) {
    const int64_t at = minute + 1'000 + i * 1'000 + (i >= 6 ? 60'000 : 0);
    const auto wall_start = std::chrono::steady_clock::now();
    const std::clock_t cpu_start = std::clock();
    reader.current(at, 0);
    const double wall_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall_start)
            .count();
    const double cpu_ms = 1000.0 * static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    fmt::print("rebuild at +{}s: {:.1f} ms wall, {:.1f} ms CPU, pattern searches so far {}\n",
               (at - minute) / 1000, wall_ms, cpu_ms, reader.pattern_searches());
  }
}

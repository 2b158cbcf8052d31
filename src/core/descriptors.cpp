#include "blip/core/descriptors.hpp"

#include <dirent.h>
#include <sys/resource.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace blip {
namespace {

// Descriptors a probe's attempt may briefly need beyond the count at start.
constexpr int64_t kMargin = 4;

int64_t soft_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  return limit.rlim_cur == RLIM_INFINITY ? INT64_MAX : static_cast<int64_t>(limit.rlim_cur);
}

}  // namespace

int64_t raise_open_files_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  return soft_limit();
}

int64_t open_descriptor_count() {
  DIR* directory = opendir("/proc/self/fd");
  if (!directory) return -1;
  int64_t count = 0;
  while (const dirent* entry = readdir(directory)) count += entry->d_name[0] != '.' ? 1 : 0;
  closedir(directory);
  return count - 1;  // the directory's own
}

bool out_of_descriptors(std::string_view detail) {
  std::string lower(detail);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (lower.find("too many open files") == std::string::npos) return false;
  const int64_t open = open_descriptor_count();
  return open < 0 || open + kMargin >= soft_limit();
}

}  // namespace blip

// CPU per fresh HTTPS connection on one curl multi handle, with and without
// curl's CA store cache, set per easy handle the way blip's HTTP probe sets it.
//   tls_ca_cache URL CA_FILE OTHER_CA_FILE MODE COUNT
// MODE: default   CAINFO=CA_FILE, Debian's default CApath kept (curl cannot cache)
//       cached    CAINFO=CA_FILE, CAPATH unset, CA_CACHE_TIMEOUT 3600 (what blip does)
//       uncached  as cached, but CA_CACHE_TIMEOUT 0
//       alternate as cached, every other connection with OTHER_CA_FILE
// Prints: mode, connections, failures, CPU ms per connection (user+sys), wall ms per connection.
#include <curl/curl.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

double cpu_ms() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return (static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3) +
         (static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3);
}

size_t discard(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr,
                 "usage: %s URL CA_FILE OTHER_CA_FILE default|cached|uncached|alternate COUNT\n",
                 argv[0]);
    return 2;
  }
  const std::string url = argv[1];
  const std::string mode = argv[4];
  const int count = std::atoi(argv[5]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM* multi = curl_multi_init();
  int failures = 0;
  // One warm-up connection: the first store load is paid once in every mode.
  double cpu_start = 0;
  auto wall_start = std::chrono::steady_clock::now();
  for (int i = -1; i < count; ++i) {
    if (i == 0) {
      cpu_start = cpu_ms();
      wall_start = std::chrono::steady_clock::now();
    }
    CURL* easy = curl_easy_init();
    curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &discard);
    curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
    const bool other = mode == "alternate" && i % 2 == 1;
    curl_easy_setopt(easy, CURLOPT_CAINFO, other ? argv[3] : argv[2]);
    if (mode != "default") {
      curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr);
      curl_easy_setopt(easy, CURLOPT_CA_CACHE_TIMEOUT, mode == "uncached" ? 0L : 3600L);
    }
    curl_multi_add_handle(multi, easy);
    int running = 1;
    while (running) {
      curl_multi_perform(multi, &running);
      if (running) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    }
    int pending = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &pending)) {
      if (message->msg == CURLMSG_DONE && message->data.result != CURLE_OK) {
        if (failures++ == 0) std::fprintf(stderr, "%s\n", curl_easy_strerror(message->data.result));
      }
    }
    curl_multi_remove_handle(multi, easy);
    curl_easy_cleanup(easy);
  }
  const double cpu = cpu_ms() - cpu_start;
  const double wall =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall_start)
          .count();
  std::printf(
      "%-9s connections=%d failures=%d cpu_ms_per_connection=%.3f wall_ms_per_connection=%.3f\n",
      mode.c_str(), count, failures, cpu / count, wall / count);
  curl_multi_cleanup(multi);
  curl_global_cleanup();
  return failures == 0 ? 0 : 1;
}

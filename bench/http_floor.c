/* The floor under an HTTP probe: what one fresh TCP connection and one GET
 * cost a process that does nothing else, at a fixed rate. bench/low_rate_cpu.sh
 * compiles it and runs it beside blip.
 *
 *   http_floor raw|curl PORT RATE SECONDS
 *
 * raw:  epoll, a non-blocking socket, connect, send, read to the blank line and
 *       the body, close. No library.
 * curl: libcurl's easy interface on one reused handle, a fresh connection each
 *       time (CURLOPT_FRESH_CONNECT and CURLOPT_FORBID_REUSE, as blip's default).
 * Attempts are due at t0 + i/RATE; it sleeps between them. Prints ok=N. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

static void sleep_until(long long due_us) {
  long long wait = due_us - now_us();
  if (wait > 0) usleep((useconds_t)wait);
}

static size_t discard(char* data, size_t size, size_t count, void* user) {
  (void)data;
  (void)user;
  return size * count;
}

static int raw_attempt(int ep, const struct sockaddr_in* to) {
  static const char request[] = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n";
  int ok = 0;
  int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (s < 0) return 0;
  struct epoll_event ev = {.events = EPOLLOUT, .data.fd = s};
  if (connect(s, (const struct sockaddr*)to, sizeof *to) != 0 && errno != EINPROGRESS) goto done;
  epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
  if (epoll_wait(ep, &ev, 1, 2000) != 1) goto done;
  if (send(s, request, sizeof request - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof request - 1))
    goto done;
  ev.events = EPOLLIN;
  epoll_ctl(ep, EPOLL_CTL_MOD, s, &ev);
  char answer[4096];
  size_t have = 0;
  while (have < sizeof answer && epoll_wait(ep, &ev, 1, 2000) == 1) {
    ssize_t n = recv(s, answer + have, sizeof answer - have, 0);
    if (n <= 0 && errno != EAGAIN) break;
    if (n > 0) have += (size_t)n;
    if (memmem(answer, have, "\r\n\r\nOK", 6)) {
      ok = 1;
      break;
    }
  }
done:
  close(s);  // also leaves the epoll set
  return ok;
}

int main(int argc, char** argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: %s raw|curl PORT RATE SECONDS\n", argv[0]);
    return 2;
  }
  const int raw = strcmp(argv[1], "raw") == 0;
  const int port = atoi(argv[2]);
  const double rate = atof(argv[3]);
  const long long attempts = (long long)(rate * atof(argv[4]));
  const long long t0 = now_us();
  long long ok = 0;
  if (raw) {
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (long long i = 0; i < attempts; ++i) {
      sleep_until(t0 + (long long)(i * 1e6 / rate));
      ok += raw_attempt(ep, &to);
    }
  } else {
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/health", port);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURL* easy = curl_easy_init();
    for (long long i = 0; i < attempts; ++i) {
      sleep_until(t0 + (long long)(i * 1e6 / rate));
      curl_easy_reset(easy);
      curl_easy_setopt(easy, CURLOPT_URL, url);
      curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard);
      curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
      curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, 1L);
      long status = 0;
      if (curl_easy_perform(easy) == CURLE_OK &&
          curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200)
        ++ok;
    }
    curl_easy_cleanup(easy);
  }
  printf("ok=%lld\n", ok);
  return 0;
}

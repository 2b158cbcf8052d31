// A stalled log driver: blip's stderr is a pipe that is full before blip starts
// and that nobody ever reads. Probing, outage edges, alerts and the feed must
// not notice; the lines that could not be written are counted on /metrics;
// SIGTERM still ends blip with status 0 within 5 s.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/freeze.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/servers.hpp"
#include "support/transcript.hpp"
#include "support/webhook_receiver.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;
using test::wait_until;

using Received = test::ReceivedPost;

// The first message of `event` about `probe` (blip's own trouble comes as the probe "blip").
const Received* find_event(const std::vector<Received>& messages, const std::string& event,
                           const std::string& probe = "web") {
  for (const Received& message : messages) {
    if (message.body["event"] == event && message.body["probe"] == probe) return &message;
  }
  return nullptr;
}

// A pipe whose buffer (one page) is already full, both ends blocking; closed on exec.
struct FullPipe {
  int read_end = -1;
  int write_end = -1;
  FullPipe() {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    read_end = ends[0];
    write_end = ends[1];
    fcntl(write_end, F_SETPIPE_SZ, 4096);
    const int flags = fcntl(write_end, F_GETFL);
    fcntl(write_end, F_SETFL, flags | O_NONBLOCK);
    const std::string filler(512, 'x');
    while (write(write_end, filler.data(), filler.size()) > 0) {
    }
    if (errno != EAGAIN) throw std::runtime_error("filling the pipe failed");
    fcntl(write_end, F_SETFL, flags);  // blip gets a blocking descriptor, as from a log driver
  }
  ~FullPipe() {
    if (read_end >= 0) close(read_end);
    if (write_end >= 0) close(write_end);
  }
  // Bytes waiting in the pipe.
  int queued() const {
    int bytes = -1;
    ioctl(read_end, FIONREAD, &bytes);
    return bytes;
  }
};

// The value of a sample line without labels, or -1.
double metric(const std::string& exposition, const std::string& name) {
  std::istringstream lines(exposition);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

// Makes blip log more lines than its queue holds (2048) while stderr takes none:
// SIGHUP with a file of 1500 errors in the directory logs each of them, and the
// running configuration stays. True once /metrics counts dropped lines.
bool log_past_the_queue(const test::TempDir& dir, test::ChildProcess& blip,
                        const std::function<test::HttpResponse(const std::string&)>& feed) {
  std::string broken;
  for (int i = 0; i < 1500; ++i) {
    broken += fmt::format(
        "[[probe]]\nname = \"p{0}\"\ntype = \"tcp\"\naddress = \"127.0.0.1:1\"\nbogus = {0}\n\n",
        i);
  }
  dir.write("probes.d/zz-broken.toml", broken);
  return wait_until(
      [&] {
        blip.signal(SIGHUP);
        std::this_thread::sleep_for(300ms);
        return metric(feed("/metrics").body, "blip_log_dropped_total") > 0;
      },
      15s);
}

TEST(LogPipe, AFullStderrNobodyReadsStopsNoProbeNoAlertAndNoShutdown) {
  test::NginxServer nginx;
  test::TempDir dir;
  test::WebhookReceiver receiver(dir);
  const int receiver_port = receiver.port();
  dir.write(
      "probes.d/probes.toml",
      test::http_config("web", nginx.url("/health"), "250ms", "1s") +
          fmt::format("\n[[alert]]\nname = \"pager\"\nkind = \"webhook\"\ngroup = \"probe\"\nurl = "
                      "\"http://127.0.0.1:{}/pager\"\n",
                      receiver_port));
  const int feed_port = test::free_port();
  const auto feed = [&](const std::string& path) {
    return test::http_request(fmt::format("http://127.0.0.1:{}{}", feed_port, path));
  };
  FullPipe stderr_pipe;
  const int filled = stderr_pipe.queued();
  ASSERT_GE(filled, 4096);
  test::ChildProcess blip(
      {BLIP_BINARY, "run", "-c", dir.file("probes.d"), "--db", dir.file("blip.db"), "--listen",
       fmt::format("127.0.0.1:{}", feed_port), "--log-level", "debug"},
      dir.file("stdout"), stderr_pipe.write_end);
  close(stderr_pipe.write_end);
  stderr_pipe.write_end = -1;
  ASSERT_TRUE(wait_until([&] { return feed("/healthz").status == 200; }, 15s))
      << "blip never came up";

  ASSERT_TRUE(log_past_the_queue(dir, blip, feed)) << feed("/metrics").body;

  std::this_thread::sleep_for(1s);
  const auto [frozen_ms, thawed_ms] = test::freeze_for(nginx, 3s);
  ASSERT_TRUE(
      wait_until([&] { return find_event(receiver.received(), "outage_closed") != nullptr; }, 10s))
      << test::read_file(dir.file("received.jsonl"));
  const double dropped = metric(feed("/metrics").body, "blip_log_dropped_total");
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(stderr_pipe.queued(), filled) << "nobody read the pipe, so blip could not write to it";

  const auto term_at = std::chrono::steady_clock::now();
  blip.signal(SIGTERM);
  const int status = blip.wait(5000);
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - term_at);
  ASSERT_EQ(status, 0) << "-1: still running 5 s after SIGTERM";

  Store store(dir.file("blip.db"), Store::Mode::read_only);
  const auto outages = store.outages(0, INT64_MAX);
  ASSERT_EQ(outages.size(), 1U);
  EXPECT_NEAR(static_cast<double>(outages[0].start_ms), static_cast<double>(frozen_ms), 500.0);
  ASSERT_TRUE(outages[0].end_ms.has_value());
  EXPECT_NEAR(static_cast<double>(*outages[0].end_ms), static_cast<double>(thawed_ms), 500.0);
  std::printf(
      "[ log pipe ] %.0f lines dropped; outage edges %+lld ms, %+lld ms off the freeze; exit %d "
      "%lld ms after "
      "SIGTERM\n",
      dropped, static_cast<long long>(outages[0].start_ms - frozen_ms),
      static_cast<long long>(*outages[0].end_ms - thawed_ms), status,
      static_cast<long long>(took.count()));
  const auto samples = store.samples("web", 0, INT64_MAX);
  ASSERT_GT(samples.size(), 20U);
  for (size_t i = 1; i < samples.size(); ++i) {
    EXPECT_LT(samples[i].sent_ms - samples[i - 1].sent_ms, 500)
        << "probing paused before sample " << i;
  }

  const auto pager = receiver.received();
  const Received* opened = find_event(pager, "outage_opened");
  const Received* closed = find_event(pager, "outage_closed");
  ASSERT_NE(opened, nullptr);
  ASSERT_NE(closed, nullptr);
  EXPECT_LT(opened->at_ms, static_cast<double>(thawed_ms))
      << "the page came while nginx was frozen";
  EXPECT_GT(closed->at_ms, static_cast<double>(thawed_ms));
  // The lines it dropped were told as blip's own trouble, through the same alert.
  const Received* trouble = find_event(pager, "outage_opened", "blip");
  ASSERT_NE(trouble, nullptr) << test::read_file(dir.file("received.jsonl"));
  EXPECT_EQ(trouble->body["trouble"], "log_dropped");
}

// The reader comes back: the newest lines the queue kept come out, after one line
// that says how many were dropped (the oldest: the outage that opened after the
// burst is among those kept), and at SIGTERM the last lines are written before exit.
TEST(LogPipe, WhenTheReaderComesBackTheKeptLinesFollowACountOfTheDroppedOnes) {
  // A listener the probe connects to (connect only), closed later for an outage.
  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, SOMAXCONN), 0);  // never accepted: room for every attempt of the test
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);
  test::TempDir dir;
  dir.write("probes.d/probes.toml",
            fmt::format("[[probe]]\nname = \"port\"\ntype = \"tcp\"\naddress = "
                        "\"127.0.0.1:{}\"\ninterval = \"100ms\"\n",
                        ntohs(address.sin_port)));
  const int feed_port = test::free_port();
  const auto feed = [&](const std::string& path) {
    return test::http_request(fmt::format("http://127.0.0.1:{}{}", feed_port, path));
  };
  FullPipe stderr_pipe;
  test::ChildProcess blip({BLIP_BINARY, "run", "-c", dir.file("probes.d"), "--db",
                           dir.file("blip.db"), "--listen", fmt::format("127.0.0.1:{}", feed_port)},
                          dir.file("stdout"), stderr_pipe.write_end);
  close(stderr_pipe.write_end);
  stderr_pipe.write_end = -1;
  ASSERT_TRUE(wait_until([&] { return feed("/healthz").status == 200; }, 15s))
      << "blip never came up";
  ASSERT_TRUE(log_past_the_queue(dir, blip, feed)) << feed("/metrics").body;
  close(listener);
  ASSERT_TRUE(wait_until(
      [&] {
        return feed("/metrics").body.find("blip_outage_open{probe=\"port\",type=\"tcp\"} 1") !=
               std::string::npos;
      },
      5s));

  std::mutex mutex;
  std::string said;  // guarded by mutex
  std::thread reader([&] {
    char buffer[65536];
    for (ssize_t got; (got = read(stderr_pipe.read_end, buffer, sizeof buffer)) > 0;) {
      std::lock_guard lock(mutex);
      said.append(buffer, static_cast<size_t>(got));
    }
  });
  const auto read_so_far = [&] {
    std::lock_guard lock(mutex);
    return said;
  };
  EXPECT_TRUE(wait_until(
      [&] { return read_so_far().find("outage: opened probe=port") != std::string::npos; }, 5s))
      << read_so_far().substr(0, 2000);
  blip.signal(SIGTERM);
  EXPECT_EQ(blip.wait(5000), 0);
  reader.join();  // the pipe's last writer is gone
  test::keep_transcript("blip's stderr, read late", said);
  const size_t notice = said.find("log: dropped lines_total=");
  ASSERT_NE(notice, std::string::npos) << said.substr(0, 2000);
  EXPECT_GT(std::stoll(said.substr(notice + std::string("log: dropped lines_total=").size())), 0);
  EXPECT_LT(notice, said.find("outage: opened probe=port"))
      << "the count comes first, where the gap is";
  EXPECT_NE(said.find("run: stopped samples="), std::string::npos)
      << "the last lines are written at exit";
}

}  // namespace
}  // namespace blip

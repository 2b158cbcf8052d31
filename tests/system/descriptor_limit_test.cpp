// Bounded resources: blip under `ulimit -n 64` with 200 probes, some of them
// against a target that accepts and never answers, so every attempt of theirs
// holds a socket until its deadline and blip runs out of descriptors.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "blip/core/clock.hpp"
#include "blip/store/store.hpp"
#include "support/daemon.hpp"
#include "support/hostile_server.hpp"
#include "support/servers.hpp"

namespace blip {
namespace {

using namespace std::chrono_literals;

TEST(Limits, OutOfDescriptorsIsSaidAtStartAndNeverBecomesAnotherProbesOutage) {
  test::NginxServer nginx;
  test::HostileServer hang(test::HostileServer::Mode::hang);
  test::TempDir dir;
  std::string config;
  for (int i = 0; i < 20; ++i) {
    config += test::http_config(fmt::format("hang-{}", i),
                                fmt::format("http://127.0.0.1:{}/", hang.port()), "100ms", "1s");
  }
  for (int i = 0; i < 180; ++i) {
    config += fmt::format(
        "[[probe]]\nname = \"port-{}\"\ntype = \"tcp\"\naddress = \"127.0.0.1:{}\"\ninterval = "
        "\"500ms\"\n\n",
        i, nginx.port());
  }
  test::Daemon blip(dir, config, {}, "", {"sh", "-c", "ulimit -n 64 && exec \"$@\"", "sh"});
  std::this_thread::sleep_for(6s);
  ASSERT_TRUE(blip.process().running()) << blip.log();
  ASSERT_EQ(blip.stop(), 0) << blip.log();
  const std::string log = blip.log();
  EXPECT_NE(log.find("open files limit 64 is below what these probes can need"), std::string::npos)
      << log;

  Store store(blip.db(), Store::Mode::read_only);
  int64_t blind = 0;
  int64_t healthy_up = 0;
  for (const std::string& probe : store.probe_names()) {
    for (const Sample& sample : store.samples(probe, 0, INT64_MAX)) {
      blind += sample.status == Status::blind ? 1 : 0;
      if (probe.rfind("port-", 0) == 0) {
        EXPECT_NE(sample.status, Status::down) << probe << ": " << sample.detail;
        healthy_up += sample.status == Status::up ? 1 : 0;
      }
    }
  }
  EXPECT_GT(blind, 0) << "the limit was reached: " << log;
  EXPECT_TRUE(store.blind_windows(0, INT64_MAX).empty())
      << "blind samples for want of a socket, not a stalled loop";
  EXPECT_GT(healthy_up, 180) << "the healthy probes still probe";
  for (const auto& outage : store.outages(0, INT64_MAX)) {
    EXPECT_EQ(outage.probe.rfind("hang-", 0), 0U)
        << "only the hanging target has outages: " << outage.probe;
  }
}

}  // namespace
}  // namespace blip

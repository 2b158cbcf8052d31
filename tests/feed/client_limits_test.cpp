// Who a feed client is (an IPv4 address, an IPv6 /64), which proxies are
// believed and which X-Forwarded-For entry names the client, which Host names
// the private face answers, and the per-client rate of token guesses.
#include "blip/feed/client_limits.hpp"

#include <gtest/gtest.h>

namespace blip {
namespace {

TEST(ClientKey, AnIpv6Slash64IsOneClientAndAMappedIpv4AddressIsItsIpv4Address) {
  struct Case {
    const char* a;
    const char* b;
    bool same;
  };
  const Case cases[] = {
      {"fd00::1", "fd00::ffff:1234:5678:9abc", true},
      {"fd00::1", "fd00:0:0:1::1", false},
      {"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::", true},
      {"2001:db8:1:2::", "2001:db8:1:3::", false},
      {"127.0.0.2", "127.0.0.2", true},
      {"127.0.0.2", "127.0.0.3", false},
      {"::ffff:192.0.2.7", "192.0.2.7", true},
      {"[fd00::1]", "fd00::2", true},
  };
  for (const Case& c : cases) {
    auto a = client_key(c.a);
    auto b = client_key(c.b);
    ASSERT_TRUE(a && b) << c.a << " " << c.b;
    EXPECT_EQ(*a == *b, c.same) << c.a << " " << c.b;
  }
  EXPECT_FALSE(client_key("example.org"));
  EXPECT_FALSE(client_key(""));
  EXPECT_FALSE(client_key("127.0.0.1:80"));
  EXPECT_EQ(describe_client(*client_key("fd00::1:2:3:4")), "fd00::/64");
  EXPECT_EQ(describe_client(*client_key("::ffff:192.0.2.7")), "192.0.2.7");
}

TEST(AddressRange, NetworksContainTheirAddressesAndNothingElse) {
  std::string error;
  auto docker = parse_address_range("172.16.0.0/12", &error);
  ASSERT_TRUE(docker) << error;
  EXPECT_TRUE(docker->contains("172.18.0.1"));
  EXPECT_TRUE(docker->contains("::ffff:172.31.255.255"));
  EXPECT_FALSE(docker->contains("172.32.0.1"));
  EXPECT_FALSE(docker->contains("fd00::1"));
  auto one = parse_address_range("127.0.0.3", &error);
  ASSERT_TRUE(one);
  EXPECT_TRUE(one->contains("127.0.0.3"));
  EXPECT_FALSE(one->contains("127.0.0.4"));
  auto v6 = parse_address_range("fd00::/8", &error);
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains("fdff::1"));
  EXPECT_FALSE(v6->contains("fe80::1"));
  auto everything = parse_address_range("0.0.0.0/0", &error);
  ASSERT_TRUE(everything);
  EXPECT_TRUE(everything->contains("203.0.113.1"));
  for (const char* bad : {"172.16.0.0/33", "fd00::/129", "nginx", "10.0.0.0/", "10.0.0.0/x", ""}) {
    EXPECT_FALSE(parse_address_range(bad, &error)) << bad;
    EXPECT_FALSE(error.empty());
  }
  auto list = parse_address_ranges("127.0.0.1, 10.0.0.0/8,fd00::/8", &error);
  ASSERT_TRUE(list) << error;
  EXPECT_EQ(list->size(), 3U);
  EXPECT_FALSE(parse_address_ranges("127.0.0.1,nope", &error));
  EXPECT_NE(error.find("nope"), std::string::npos) << error;
  EXPECT_TRUE(parse_address_ranges("", &error)->empty());
}

TEST(ForwardedClient, TheRightmostEntryThatIsNotATrustedProxy) {
  std::string error;
  const auto proxies = *parse_address_ranges("10.0.0.0/8", &error);
  // What the client wrote itself (left) is never believed over what the proxies added (right).
  EXPECT_EQ(forwarded_client("6.6.6.6, 203.0.113.9", proxies), client_key("203.0.113.9"));
  EXPECT_EQ(forwarded_client("203.0.113.9, 10.1.2.3", proxies), client_key("203.0.113.9"));
  EXPECT_EQ(forwarded_client(" 2001:db8::1 ", proxies), client_key("2001:db8::1"));
  EXPECT_EQ(forwarded_client("10.1.1.1, 10.2.2.2", proxies), std::nullopt) << "only proxies";
  EXPECT_EQ(forwarded_client("", proxies), std::nullopt);
  EXPECT_EQ(forwarded_client("203.0.113.9, unknown", proxies), std::nullopt)
      << "a garbled entry ends the trail";
}

TEST(HostAllowed, IpLiteralsLocalhostAndTheListedNames) {
  const std::vector<std::string> allowed{"blip", "Status.Example.org"};
  struct Case {
    const char* host;
    bool allowed;
  };
  const Case cases[] = {
      {"127.0.0.1:9185", true},
      {"10.1.2.3", true},
      {"[::1]:9185", true},
      {"[fd00::1]", true},
      {"localhost:9185", true},
      {"LOCALHOST.", true},
      {"blip:9185", true},
      {"BLIP", true},
      {"status.example.org", true},
      {"attacker.example:9185", false},
      {"blip.attacker.example", false},
      {"", false},
      {"[nonsense]", false},
      {"127.0.0.1.attacker.example", false},
      {"blip:abc", false},
      {"[::1]:, x", false},
      {"blip:", false},
      {"[::1 ]:9185", false},
      {"bl ip", false},
  };
  for (const Case& c : cases) EXPECT_EQ(host_allowed(c.host, allowed), c.allowed) << c.host;
  EXPECT_TRUE(host_allowed(nullptr, allowed)) << "HTTP/1.0 has no Host; no browser sends that";
}

TEST(PerClientRate, ABurstThenTheRateAndEachClientItsOwn) {
  PerClientRate rate(0.1, 10.0, 3);
  const ClientKey a = *client_key("192.0.2.1");
  const ClientKey b = *client_key("192.0.2.2");
  int64_t now = 1'000'000;
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(rate.take(a, now)) << i;
  EXPECT_FALSE(rate.take(a, now));
  EXPECT_TRUE(rate.take(b, now)) << "another client has its own bucket";
  EXPECT_FALSE(rate.take(a, now + 9'000'000));
  EXPECT_TRUE(rate.take(a, now + 10'000'000)) << "one more every 10 s";
  // Full: a new client is taken only once someone's bucket has refilled (and is forgotten).
  EXPECT_TRUE(rate.take(*client_key("192.0.2.3"), now));
  EXPECT_FALSE(rate.take(*client_key("192.0.2.4"), now + 1'000'000))
      << "three clients, none refilled";
  EXPECT_TRUE(rate.take(*client_key("192.0.2.4"), now + 200'000'000));
}

}  // namespace
}  // namespace blip

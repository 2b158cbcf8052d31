#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace blip {

// Who a connection is for the feed's limits: an IPv4 address, or an IPv6
// address's /64 (one host's whole network: an IPv6 client picks any address
// in it, so counting exact addresses would count one client as many). An
// IPv4-mapped IPv6 address is its IPv4 address. Opaque bytes, for map keys.
using ClientKey = std::string;
ClientKey client_key(const sockaddr* address);
// The same from text ("127.0.0.2", "fd00::5"); nullopt when not a numeric address.
std::optional<ClientKey> client_key(std::string_view address_text);
// "127.0.0.2" or "fd00:0:0:1::/64", for logs.
std::string describe_client(const ClientKey& key);

// An address or a network ("172.16.0.0/12", "fd00::/8", "127.0.0.1").
struct AddressRange {
  int family = 0;  // AF_INET or AF_INET6
  unsigned char bytes[16]{};
  unsigned prefix_bits = 0;
  bool contains(const sockaddr* address) const;
  bool contains(std::string_view address_text) const;
};
// Nullopt with `error` set when the text is neither.
std::optional<AddressRange> parse_address_range(std::string_view text, std::string* error);
// A comma-separated list of them; nullopt with `error` naming the bad one.
std::optional<std::vector<AddressRange>> parse_address_ranges(std::string_view text,
                                                              std::string* error);

// The client a request through trusted proxies is for: X-Forwarded-For's
// entries read from the right, the first that is not itself a trusted proxy
// (entries to its left are whatever the client wrote). Nullopt when there is
// none to be had: no header, or every entry a proxy or not an address.
std::optional<ClientKey> forwarded_client(std::string_view x_forwarded_for,
                                          const std::vector<AddressRange>& proxies);

// Whether the private face answers a request with this Host header: none
// (HTTP/1.0), an IP literal, `localhost`, or one of `allowed` (names, without
// a port; compared ignoring case). A page on another site that an attacker's
// DNS points at 127.0.0.1 sends its own name, and is refused.
bool host_allowed(const char* host_header, const std::vector<std::string>& allowed);

// A token bucket per client (unknown-token guesses): `burst` at once, then
// `per_second`. Holds at most `max_clients` clients; full buckets are the
// first forgotten.
class PerClientRate {
 public:
  PerClientRate(double per_second, double burst, size_t max_clients)
      : per_second_(per_second), burst_(burst), max_clients_(max_clients) {}
  // Takes one token; false when the client has none left.
  bool take(const ClientKey& client, int64_t now_mono_us);

 private:
  struct Bucket {
    double tokens;
    int64_t refilled_us;
  };
  double refill(Bucket& bucket, int64_t now_mono_us) const;

  double per_second_;
  double burst_;
  size_t max_clients_;
  std::map<ClientKey, Bucket> buckets_;
};

}  // namespace blip

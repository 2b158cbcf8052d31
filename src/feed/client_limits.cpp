#include "blip/feed/client_limits.hpp"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace blip {
namespace {

constexpr char kV4 = '4';
constexpr char kV6 = '6';

ClientKey v4_key(const unsigned char* bytes) {
  return ClientKey(1, kV4) + std::string(reinterpret_cast<const char*>(bytes), 4);
}

// An IPv6 address's /64, or the IPv4 address an IPv4-mapped one carries.
ClientKey v6_key(const in6_addr& address) {
  if (IN6_IS_ADDR_V4MAPPED(&address)) return v4_key(address.s6_addr + 12);
  return ClientKey(1, kV6) + std::string(reinterpret_cast<const char*>(address.s6_addr), 8);
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front())))
    text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  return text;
}

// "fd00::1", "[fd00::1]", "127.0.0.1": the address's family and bytes.
bool parse_numeric(std::string_view text, int& family, unsigned char* bytes) {
  text = trim(text);
  if (text.size() > 2 && text.front() == '[' && text.back() == ']')
    text = text.substr(1, text.size() - 2);
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return false;
  const std::string copy(text);
  if (inet_pton(AF_INET, copy.c_str(), bytes) == 1) {
    family = AF_INET;
    return true;
  }
  if (inet_pton(AF_INET6, copy.c_str(), bytes) == 1) {
    family = AF_INET6;
    return true;
  }
  return false;
}

bool prefix_matches(const unsigned char* a, const unsigned char* b, unsigned bits) {
  const unsigned whole = bits / 8;
  if (std::memcmp(a, b, whole) != 0) return false;
  const unsigned rest = bits % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xff << (8 - rest));
  return (a[whole] & mask) == (b[whole] & mask);
}

bool range_contains(const AddressRange& range, int family, const unsigned char* bytes) {
  if (family == AF_INET6 && range.family == AF_INET) {
    // An IPv4 client on a dual-stack socket arrives as ::ffff:a.b.c.d.
    static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(bytes, kMapped, 12) != 0) return false;
    return prefix_matches(range.bytes, bytes + 12, range.prefix_bits);
  }
  return family == range.family && prefix_matches(range.bytes, bytes, range.prefix_bits);
}

}  // namespace

ClientKey client_key(const sockaddr* address) {
  if (address && address->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(address);
    return v4_key(reinterpret_cast<const unsigned char*>(&v4->sin_addr));
  }
  if (address && address->sa_family == AF_INET6)
    return v6_key(reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr);
  return ClientKey("?");
}

std::optional<ClientKey> client_key(std::string_view address_text) {
  int family = 0;
  unsigned char bytes[16]{};
  if (!parse_numeric(address_text, family, bytes)) return std::nullopt;
  if (family == AF_INET) return v4_key(bytes);
  in6_addr address{};
  std::memcpy(address.s6_addr, bytes, 16);
  return v6_key(address);
}

std::string describe_client(const ClientKey& key) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (key.size() == 5 && key[0] == kV4) {
    inet_ntop(AF_INET, key.data() + 1, text, sizeof text);
    return text;
  }
  if (key.size() == 9 && key[0] == kV6) {
    in6_addr address{};
    std::memcpy(address.s6_addr, key.data() + 1, 8);
    inet_ntop(AF_INET6, &address, text, sizeof text);
    return std::string(text) + "/64";
  }
  return text;
}

bool AddressRange::contains(const sockaddr* address) const {
  if (!address) return false;
  if (address->sa_family == AF_INET) {
    return range_contains(*this, AF_INET,
                          reinterpret_cast<const unsigned char*>(
                              &reinterpret_cast<const sockaddr_in*>(address)->sin_addr));
  }
  if (address->sa_family == AF_INET6) {
    return range_contains(*this, AF_INET6,
                          reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr.s6_addr);
  }
  return false;
}

bool AddressRange::contains(std::string_view address_text) const {
  int address_family = 0;
  unsigned char address_bytes[16]{};
  return parse_numeric(address_text, address_family, address_bytes) &&
         range_contains(*this, address_family, address_bytes);
}

std::optional<AddressRange> parse_address_range(std::string_view text, std::string* error) {
  text = trim(text);
  AddressRange range;
  const size_t slash = text.find('/');
  if (!parse_numeric(text.substr(0, slash), range.family, range.bytes)) {
    if (error)
      *error = fmt::format(
          "\"{}\" is not a numeric address or network (like 172.16.0.0/12 or fd00::/8)", text);
    return std::nullopt;
  }
  const unsigned full = range.family == AF_INET ? 32 : 128;
  range.prefix_bits = full;
  if (slash != std::string_view::npos) {
    const std::string_view bits = text.substr(slash + 1);
    unsigned parsed = 0;
    bool ok = !bits.empty() && bits.size() <= 3;
    for (char c : bits) {
      ok = ok && std::isdigit(static_cast<unsigned char>(c));
      parsed = parsed * 10 + static_cast<unsigned>(c - '0');
    }
    if (!ok || parsed > full) {
      if (error) *error = fmt::format("\"{}\": the prefix length must be 0 to {}", text, full);
      return std::nullopt;
    }
    range.prefix_bits = parsed;
  }
  return range;
}

std::optional<std::vector<AddressRange>> parse_address_ranges(std::string_view text,
                                                              std::string* error) {
  std::vector<AddressRange> ranges;
  while (!trim(text).empty()) {
    const size_t comma = text.find(',');
    auto range = parse_address_range(text.substr(0, comma), error);
    if (!range) return std::nullopt;
    ranges.push_back(*range);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
  }
  return ranges;
}

std::optional<ClientKey> forwarded_client(std::string_view x_forwarded_for,
                                          const std::vector<AddressRange>& proxies) {
  while (!x_forwarded_for.empty()) {
    const size_t comma = x_forwarded_for.rfind(',');
    const std::string_view entry =
        comma == std::string_view::npos ? x_forwarded_for : x_forwarded_for.substr(comma + 1);
    x_forwarded_for =
        comma == std::string_view::npos ? std::string_view() : x_forwarded_for.substr(0, comma);
    auto key = client_key(entry);
    if (!key)
      return std::nullopt;  // not an address: what is left of it was never checked by a proxy
    const bool proxy = std::any_of(proxies.begin(), proxies.end(), [&](const AddressRange& range) {
      return range.contains(entry);
    });
    if (!proxy) return key;
  }
  return std::nullopt;
}

bool host_allowed(const char* host_header, const std::vector<std::string>& allowed) {
  if (!host_header) return true;
  std::string_view host(host_header);
  // Names, addresses and a port are made of these; anything else is no Host blip answers.
  const bool plain = std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
  });
  if (!plain) return false;
  // ":<digits>" or nothing after the name or the bracketed address.
  auto port_ok = [](std::string_view tail) {
    return tail.empty() || (tail.size() > 1 && tail.size() <= 6 && tail.front() == ':' &&
                            std::all_of(tail.begin() + 1, tail.end(),
                                        [](unsigned char c) { return std::isdigit(c); }));
  };
  if (host.starts_with('[')) {
    const size_t close = host.find(']');
    return close != std::string_view::npos && port_ok(host.substr(close + 1)) &&
           client_key(host.substr(1, close - 1)).has_value();
  }
  if (const size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    if (!port_ok(host.substr(colon))) return false;
    host = host.substr(0, colon);
  }
  if (host.empty()) return false;
  int family = 0;
  unsigned char bytes[16]{};
  if (parse_numeric(host, family, bytes) && family == AF_INET) return true;
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (lower.ends_with('.')) lower.pop_back();  // "localhost." is localhost
  if (lower == "localhost") return true;
  return std::any_of(allowed.begin(), allowed.end(), [&](const std::string& name) {
    return name.size() == lower.size() &&
           std::equal(name.begin(), name.end(), lower.begin(), [](char a, char b) {
             return std::tolower(static_cast<unsigned char>(a)) == b;
           });
  });
}

double PerClientRate::refill(Bucket& bucket, int64_t now_mono_us) const {
  const double elapsed_s =
      static_cast<double>(std::max<int64_t>(0, now_mono_us - bucket.refilled_us)) / 1e6;
  bucket.tokens = std::min(burst_, bucket.tokens + elapsed_s * per_second_);
  bucket.refilled_us = now_mono_us;
  return bucket.tokens;
}

bool PerClientRate::take(const ClientKey& client, int64_t now_mono_us) {
  auto found = buckets_.find(client);
  if (found == buckets_.end()) {
    if (buckets_.size() >= max_clients_) {
      // Forget whoever has refilled: they would start full anyway.
      for (auto it = buckets_.begin(); it != buckets_.end();) {
        it = refill(it->second, now_mono_us) >= burst_ ? buckets_.erase(it) : std::next(it);
      }
    }
    if (buckets_.size() >= max_clients_)
      return false;  // that many guessing at once: no one new gets a guess
    found = buckets_.emplace(client, Bucket{burst_, now_mono_us}).first;
  }
  if (refill(found->second, now_mono_us) < 1.0) return false;
  found->second.tokens -= 1.0;
  return true;
}

}  // namespace blip

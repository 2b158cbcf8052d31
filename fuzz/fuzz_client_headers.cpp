// What a feed client controls in its headers, as the listener reads it: the
// Host the private face checks (first line), an X-Forwarded-For behind a
// trusted proxy (second), and a --trusted-proxy list (third).
#include <cstring>
#include <string>

#include "blip/feed/client_limits.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = blip::fuzz::as_text(data, size);
  // A header reaches blip as a C string: it ends at its first NUL.
  std::string host(blip::fuzz::take_line(rest));
  host.resize(std::strlen(host.c_str()));
  const std::string_view forwarded = blip::fuzz::take_line(rest);
  const std::string_view proxies_text = blip::fuzz::take_line(rest);
  static const std::vector<std::string> kAllowed{"blip", "status.example.org"};
  // An empty Host (present but blank) is never a name the private face answers.
  if (blip::host_allowed(host.c_str(), kAllowed) && host.empty())
    blip::fuzz::contract_broken("empty host allowed");
  // The host part of an allowed Host never holds what no name or address has.
  if (blip::host_allowed(host.c_str(), kAllowed) &&
      host.find_first_of(" /@\\") != std::string::npos) {
    blip::fuzz::contract_broken("host with a space, slash or @ allowed");
  }
  std::string error;
  const auto proxies = blip::parse_address_ranges(proxies_text, &error);
  if (!proxies && error.empty()) blip::fuzz::contract_broken("a refused list says why");
  if (auto client = blip::forwarded_client(
          forwarded, proxies ? *proxies : std::vector<blip::AddressRange>{})) {
    const std::string described = blip::describe_client(*client);
    if (described.empty()) blip::fuzz::contract_broken("undescribed client");
  }
  return 0;
}

// ${NAME} / ${NAME:-fallback} / $$ expansion on any text, with a few
// variables set: an expansion either succeeds or says why.
#include <cstdlib>
#include <string>

#include "blip/config/config.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  setenv("BLIP_FUZZ_SET", "value", 1);
  setenv("BLIP_FUZZ_EMPTY", "", 1);
  setenv("BLIP_FUZZ_DOLLAR", "${BLIP_FUZZ_SET}$$", 1);  // expanded once: never re-read
  unsetenv("BLIP_FUZZ_UNSET");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = blip::fuzz::as_text(data, size);
  std::string error;
  const auto expanded = blip::expand_environment(text, &error);
  if (!expanded && error.empty()) blip::fuzz::contract_broken("a failed expansion says why");
  // Without "$" nothing changes.
  if (text.find('$') == std::string_view::npos && expanded != std::string(text)) {
    blip::fuzz::contract_broken("text without $ changed");
  }
  return 0;
}

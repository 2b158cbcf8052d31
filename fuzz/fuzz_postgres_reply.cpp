// What the Postgres probe reads of a server's answer: a failure's SQLSTATE
// (first line) and message (second line), and the integer columns of the
// replication queries (each further line, as libpq's text format gives them).
#include <charconv>
#include <string>

#include "blip/probes/postgres_reply.hpp"
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest = blip::fuzz::as_text(data, size);
  blip::PgQueryResult failed;
  failed.sqlstate = std::string(blip::fuzz::take_line(rest));
  failed.error = std::string(blip::fuzz::take_line(rest));
  const blip::ErrorClass error = blip::classify_postgres_error(failed);
  if (static_cast<uint8_t>(error) >= blip::kErrorClassCount)
    blip::fuzz::contract_broken("no such error class");
  while (!rest.empty()) {
    const std::string_view column = blip::fuzz::take_line(rest);
    const auto value = blip::postgres_integer(column);
    // A number is read whole or not at all: it prints back as the same digits.
    if (value && (std::to_string(*value) != column &&
                  !(column.starts_with("-0") || column.starts_with("0")))) {
      blip::fuzz::contract_broken("an integer read differs from its text");
    }
  }
  return 0;
}

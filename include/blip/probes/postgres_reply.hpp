#pragma once
#include <cstdint>
#include <optional>
#include <string_view>

#include "blip/adapters/pq_uv.hpp"
#include "blip/core/sample.hpp"

namespace blip {

// How the Postgres probe reads what a server answered.

// A failed query or connection: by SQLSTATE when the server sent one, else by libpq's text.
ErrorClass classify_postgres_error(const PgQueryResult& result);

// A bigint or count(*) column in libpq's text format: nullopt unless the whole
// text is one integer that fits (a server or pooler may send anything).
std::optional<int64_t> postgres_integer(std::string_view text);

}  // namespace blip

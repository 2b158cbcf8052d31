#include "blip/config/config.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <toml++/toml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <tuple>

#include "blip/core/clock.hpp"
#include "blip/core/cron.hpp"
#include "blip/core/duration.hpp"

namespace blip {

std::string_view to_string(AlertConfig::Kind kind) {
  constexpr std::array<std::string_view, kAlertKindCount> kNames{"webhook", "slack", "ntfy",
                                                                 "alertmanager", "email"};
  return kNames.at(static_cast<size_t>(kind));
}

std::optional<MailAddress> parse_mail_address(std::string_view text, std::string* problem) {
  auto fail = [&](std::string why) -> std::optional<MailAddress> {
    if (problem) *problem = std::move(why);
    return std::nullopt;
  };
  auto trim = [](std::string_view part) {
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    return part;
  };
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return fail("a control character or line break");
  }
  MailAddress parsed;
  std::string_view address = trim(text);
  if (!address.empty() && address.back() == '>') {
    const size_t open = address.rfind('<');
    if (open == std::string_view::npos) return fail("a \">\" without \"<\"");
    std::string_view name = trim(address.substr(0, open));
    if (name.size() >= 2 && name.front() == '"' && name.back() == '"') {
      name = name.substr(1, name.size() - 2);
      if (name.find('"') != std::string_view::npos || name.find('\\') != std::string_view::npos)
        return fail("a quoted name with \" or \\ inside");
    }
    parsed.display_name = std::string(name);
    address = address.substr(open + 1, address.size() - open - 2);
  }
  if (address.empty()) return fail("no address");
  const size_t at = address.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == address.size())
    return fail("not an address like name@example.org");
  for (char c : address) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte >= 0x7f ||
        std::string_view("<>()[]\\,;:\"").find(c) != std::string_view::npos)
      return fail("not an address like name@example.org (spaces, specials or non-ASCII)");
  }
  const std::string_view domain = address.substr(at + 1);
  if (address.substr(0, at).find('@') != std::string_view::npos ||
      !std::all_of(domain.begin(), domain.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-';
      }))
    return fail("not an address like name@example.org");
  parsed.address = std::string(address);
  return parsed;
}

std::string ConfigError::to_string() const {
  if (line == 0) return fmt::format("{}: {}", file, message);
  return fmt::format("{}:{}:{}: {}", file, line, column, message);
}

namespace {

std::string lowercase(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

bool is_secret_parameter(std::string_view name, const std::vector<std::string>& also_secret) {
  const std::string lower = lowercase(name);
  auto listed = [&](std::string_view part) {
    for (const auto* names : {&kSecretQueryParameters, &also_secret}) {
      for (const std::string& secret : *names) {
        if (lowercase(secret) == part) return true;
      }
    }
    return false;
  };
  if (listed(lower)) return true;
  size_t start = 0;
  for (size_t end = 0; end <= lower.size(); ++end) {
    if (end == lower.size() || lower[end] == '_' || lower[end] == '-' || lower[end] == '.') {
      if (end > start && listed(std::string_view(lower).substr(start, end - start))) return true;
      start = end + 1;
    }
  }
  return false;
}

}  // namespace

std::string url_origin(const std::string& url, bool default_port) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), curl_url_cleanup);
  char* scheme = nullptr;
  char* host = nullptr;
  char* port = nullptr;
  std::string origin = "(unparsable url)";
  if (handle && curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) == CURLUE_OK &&
      curl_url_get(handle.get(), CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(handle.get(), CURLUPART_HOST, &host, 0) == CURLUE_OK) {
    origin = fmt::format("{}://{}", scheme, host);
    if (curl_url_get(handle.get(), CURLUPART_PORT, &port, default_port ? CURLU_DEFAULT_PORT : 0) ==
        CURLUE_OK)
      origin += fmt::format(":{}", port);
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  return origin;
}

std::string redact_url(const std::string& url, const std::vector<std::string>& also_secret) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), curl_url_cleanup);
  if (!handle || curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) != CURLUE_OK) {
    return "<unparsable url>";
  }
  // Whatever part of the user info is there may be the secret: show that it exists, not what it is.
  char* user = nullptr;
  char* password = nullptr;
  const bool has_user = curl_url_get(handle.get(), CURLUPART_USER, &user, 0) == CURLUE_OK;
  const bool has_password =
      curl_url_get(handle.get(), CURLUPART_PASSWORD, &password, 0) == CURLUE_OK;
  curl_free(user);
  curl_free(password);
  if (has_user || has_password) {
    curl_url_set(handle.get(), CURLUPART_USER, "***", 0);
    curl_url_set(handle.get(), CURLUPART_PASSWORD, nullptr, 0);
  }
  char* query = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
    std::string redacted_query;
    std::string_view rest(query);
    while (!rest.empty()) {
      const size_t amp = rest.find('&');
      std::string_view pair = rest.substr(0, amp);
      const size_t equals = pair.find('=');
      if (!redacted_query.empty()) redacted_query += '&';
      const bool secret = equals != std::string_view::npos &&
                          is_secret_parameter(pair.substr(0, equals), also_secret);
      redacted_query += secret ? std::string(pair.substr(0, equals)) + "=***" : std::string(pair);
      rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    }
    curl_free(query);
    curl_url_set(handle.get(), CURLUPART_QUERY, redacted_query.c_str(), 0);
  }
  char* redacted = nullptr;
  if (curl_url_get(handle.get(), CURLUPART_URL, &redacted, 0) != CURLUE_OK) {
    return "<unparsable url>";
  }
  std::string out = redacted;
  curl_free(redacted);
  return out;
}

std::string redact_postgres_dsn(const std::string& dsn) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &error);
  if (!options) {
    PQfreemem(error);
    return {};
  }
  std::string shown;
  for (PQconninfoOption* option = options; option->keyword; ++option) {
    // libpq marks secret options (password, sslpassword) with '*'.
    if (!option->val || std::strchr(option->dispchar, '*') != nullptr) continue;
    if (!shown.empty()) shown += ' ';
    shown += fmt::format("{}={}", option->keyword, option->val);
  }
  PQconninfoFree(options);
  return shown;
}

namespace {

// The "}" that closes the "${" just before `from`, past any nested "${...}" in a fallback.
size_t closing_brace(std::string_view text, size_t from) {
  int depth = 1;
  for (size_t i = from; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      ++depth;
      ++i;
    } else if (text[i] == '}' && --depth == 0) {
      return i;
    }
  }
  return std::string_view::npos;
}

}  // namespace

std::optional<std::string> expand_environment(std::string_view text, std::string* error) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      const size_t close = closing_brace(text, i + 2);
      if (close == std::string_view::npos) {
        if (error) *error = "unterminated \"${\" in string";
        return std::nullopt;
      }
      std::string name(text.substr(i + 2, close - i - 2));
      // ${NAME:-fallback}: the fallback when NAME is unset or empty, as in a shell; the
      // fallback may itself hold ${OTHER}, expanded only when it is used.
      std::optional<std::string> fallback;
      if (size_t dash = name.find(":-"); dash != std::string::npos) {
        fallback = name.substr(dash + 2);
        name.resize(dash);
      }
      const char* env = std::getenv(name.c_str());
      if (env && (*env != '\0' || !fallback)) {
        out += env;
      } else if (fallback) {
        auto expanded = expand_environment(*fallback, error);
        if (!expanded) return std::nullopt;
        out += *expanded;
      } else {
        if (error) *error = fmt::format("environment variable \"{}\" is not set", name);
        return std::nullopt;
      }
      i = close;
    } else {
      out += text[i];
    }
  }
  return out;
}

namespace {

// Reads the keys of one TOML table, records an error (with the file position)
// for every bad value, and remembers which keys were read so the rest can be
// reported as unknown.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string file, std::vector<ConfigError>& errors)
      : table_(table), file_(std::move(file)), errors_(errors) {}

  void error_at(const toml::source_region& where, std::string message) {
    errors_.push_back({file_, static_cast<int>(where.begin.line),
                       static_cast<int>(where.begin.column), std::move(message)});
  }
  void error_at_table(std::string message) { error_at(table_.source(), std::move(message)); }

  const toml::node* find(std::string_view key) {
    read_.insert(std::string(key));
    return table_.get(key);
  }

  std::optional<std::string> string(std::string_view key) {
    const toml::node* node = find(key);
    if (!node) return std::nullopt;
    return expand(*node, key);
  }

  std::string required_string(std::string_view key, std::string_view context) {
    const toml::node* node = find(key);
    if (!node) {
      error_at_table(fmt::format("{}: missing required key \"{}\"", context, key));
      return {};
    }
    return expand(*node, key).value_or("");
  }

  std::optional<int64_t> duration(std::string_view key) {
    const toml::node* node = find(key);
    if (!node) return std::nullopt;
    if (!node->is_string()) {
      error_at(node->source(), fmt::format("{}: expected a duration in quotes, like \"2s\"", key));
      return std::nullopt;
    }
    auto text = expand(*node, key);
    if (!text) return std::nullopt;
    std::string problem;
    auto ms = parse_duration_ms(*text, &problem);
    if (!ms) error_at(table_.get(key)->source(), fmt::format("{}: {}", key, problem));
    return ms;
  }

  std::optional<bool> boolean(std::string_view key) {
    const toml::node* node = find(key);
    if (!node) return std::nullopt;
    if (!node->is_boolean()) {
      error_at(node->source(), fmt::format("{}: expected true or false", key));
      return std::nullopt;
    }
    return node->value<bool>();
  }

  std::optional<int64_t> integer(std::string_view key) {
    const toml::node* node = find(key);
    if (!node) return std::nullopt;
    if (!node->is_integer()) {
      error_at(node->source(), fmt::format("{}: expected an integer", key));
      return std::nullopt;
    }
    return node->value<int64_t>();
  }

  std::vector<std::string> string_list(std::string_view key) {
    std::vector<std::string> out;
    const toml::node* node = find(key);
    if (!node) return out;
    const toml::array* array = node->as_array();
    if (!array) {
      error_at(node->source(), fmt::format("{}: expected a list of strings", key));
      return out;
    }
    for (const toml::node& item : *array) {
      if (auto value = expand(item, key)) out.push_back(*value);
    }
    return out;
  }

  // Reads a secret from `key` or `<key>_file` (never both): a password, a token.
  std::string secret(std::string_view context, std::string_view key = "password") {
    const std::string file_key = fmt::format("{}_file", key);
    auto inline_secret = string(key);
    const toml::node* file_node = find(file_key);
    if (!file_node) return inline_secret.value_or("");
    auto path = expand(*file_node, file_key);
    if (!path) return {};
    if (inline_secret) {
      error_at(file_node->source(),
               fmt::format("{}: set {} or {}, not both", context, key, file_key));
      return {};
    }
    return secret_file(*file_node, file_key, *path).value_or("");
  }

  // The text of the secret file `path`, the value of `node` (a `password_file`, a header of
  // `header_files`), without trailing newlines. A relative path is read from the configuration
  // file's own directory. Nullopt, with an error naming `key`, when it cannot be read.
  std::optional<std::string> secret_file(const toml::node& node, std::string_view key,
                                         const std::string& path) {
    std::filesystem::path secret_path(path);
    if (secret_path.is_relative())
      secret_path = std::filesystem::path(file_).parent_path() / secret_path;
    std::ifstream in(secret_path);
    if (!in) {
      error_at(node.source(),
               fmt::format("{}: cannot read \"{}\": {}", key, path, std::strerror(errno)));
      return std::nullopt;
    }
    std::string secret_text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!secret_text.empty() && (secret_text.back() == '\n' || secret_text.back() == '\r')) {
      secret_text.pop_back();
    }
    return secret_text;
  }

  // `probes` and `tags`: which probes and jobs a table applies to.
  Selector selector() { return Selector{string_list("probes"), string_list("tags")}; }

  // A time zone key, checked against the machine's zone files.
  std::string time_zone(std::string_view context) {
    auto zone = string("time_zone");
    if (!zone) return "Etc/UTC";
    if (!known_time_zone(*zone)) {
      error_at(table_.get("time_zone")->source(),
               fmt::format("{}: unknown time zone \"{}\" (like Europe/Berlin or Etc/UTC)", context,
                           *zone));
    }
    return *zone;
  }

  // Where a key is, or the table when the key is absent.
  const toml::source_region& where(std::string_view key) const {
    const toml::node* node = table_.get(key);
    return node ? node->source() : table_.source();
  }

  void reject_unknown_keys(std::string_view context) {
    for (auto&& [key, node] : table_) {
      if (!read_.contains(std::string(key.str()))) {
        error_at(key.source(), fmt::format("{}: unknown key \"{}\"", context, key.str()));
      }
    }
  }

  const toml::table& table() const { return table_; }

  std::optional<std::string> expand(const toml::node& node, std::string_view key) {
    const auto* value = node.as_string();
    if (!value) {
      error_at(node.source(), fmt::format("{}: expected a string", key));
      return std::nullopt;
    }
    std::string problem;
    auto expanded = expand_environment(value->get(), &problem);
    if (!expanded) error_at(node.source(), fmt::format("{}: {}", key, problem));
    return expanded;
  }

  const toml::table& table_;
  std::string file_;
  std::vector<ConfigError>& errors_;
  std::set<std::string> read_;
};

bool split_host_port(const std::string& address, std::string& host, std::string& port) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return port.size() <= 5 &&
         std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         std::stoi(port) >= 1 && std::stoi(port) <= 65535;
}

std::vector<StatusRange> read_expect_status(TableReader& reader) {
  const toml::node* node = reader.find("expect_status");
  if (!node) return {{200, 399}};
  std::vector<StatusRange> ranges;
  auto add = [&](const toml::node& item) {
    if (auto code = item.value<int64_t>();
        code && item.is_integer() && *code >= 100 && *code <= 599) {
      ranges.push_back({static_cast<int>(*code), static_cast<int>(*code)});
      return;
    }
    int first = 0;
    int last = 0;
    char extra = 0;
    auto text = item.value<std::string>();
    if (text && std::sscanf(text->c_str(), "%d-%d%c", &first, &last, &extra) == 2 && first >= 100 &&
        last <= 599 && first <= last) {
      ranges.push_back({first, last});
      return;
    }
    reader.error_at(item.source(),
                    "expect_status: expected status codes like 200 or ranges like \"200-299\"");
  };
  if (const toml::array* array = node->as_array()) {
    for (const toml::node& item : *array) add(item);
  } else {
    add(*node);
  }
  return ranges;
}

// Reads a path key of an http probe's TLS settings: relative to the
// configuration file's directory (as password_file), and readable now, so a
// typo shows at load time rather than as a tls down sample.
std::string read_tls_file(TableReader& reader, std::string_view key) {
  auto text = reader.string(key);
  if (!text) return {};
  const toml::node* node = reader.table().get(key);
  if (text->empty()) {
    reader.error_at(node->source(), fmt::format("{}: expected a file path", key));
    return {};
  }
  std::filesystem::path path(*text);
  if (path.is_relative()) path = std::filesystem::path(reader.file_).parent_path() / path;
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    reader.error_at(node->source(),
                    fmt::format("{}: \"{}\" is a directory, not a file", key, *text));
    return {};
  }
  std::ifstream in(path);
  if (!in) {
    reader.error_at(node->source(),
                    fmt::format("{}: cannot read \"{}\": {}", key, *text, std::strerror(errno)));
    return {};
  }
  return path.string();
}

ProbeSettings read_http(TableReader& reader, ProbeConfig& probe, const std::string& context) {
  HttpSettings http;
  http.url = reader.required_string("url", context);
  if (!http.url.empty()) {
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> url(curl_url(), curl_url_cleanup);
    char* scheme = nullptr;
    if (curl_url_set(url.get(), CURLUPART_URL, http.url.c_str(), 0) != CURLUE_OK ||
        curl_url_get(url.get(), CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
      reader.error_at(reader.table().get("url")->source(), "url: not a valid URL");
    } else {
      if (std::strcmp(scheme, "http") != 0 && std::strcmp(scheme, "https") != 0) {
        reader.error_at(reader.table().get("url")->source(),
                        fmt::format("url: scheme \"{}\" is not http or https", scheme));
      }
      curl_free(scheme);
    }
  }
  if (reader.table().get("redact_query")) http.redact_query = reader.string_list("redact_query");
  if (!http.url.empty()) probe.target_display = redact_url(http.url, http.redact_query);
  if (auto method = reader.string("method")) {
    static const std::set<std::string> kMethods{"GET",     "HEAD",   "POST", "PUT",
                                                "OPTIONS", "DELETE", "PATCH"};
    if (!kMethods.contains(*method)) {
      reader.error_at(reader.table().get("method")->source(),
                      fmt::format("method: unsupported HTTP method \"{}\"", *method));
    }
    http.method = *method;
  }
  if (const toml::node* headers = reader.find("headers")) {
    if (const toml::table* table = headers->as_table()) {
      for (auto&& [key, value] : *table) {
        if (auto text = reader.expand(value, fmt::format("headers.{}", key.str()))) {
          http.headers.emplace_back(std::string(key.str()), *text);
        }
      }
    } else {
      reader.error_at(headers->source(),
                      "headers: expected a table like { Host = \"example.org\" }");
    }
  }
  http.expect_status = read_expect_status(reader);
  http.expect_body = reader.string("expect_body").value_or("");
  http.follow_redirects = reader.boolean("follow_redirects").value_or(false);
  http.tls_verify = reader.boolean("tls_verify").value_or(true);
  http.reuse_connection = reader.boolean("reuse_connection").value_or(false);
  if (auto max_body = reader.integer("max_body_bytes")) {
    if (*max_body <= 0) {
      reader.error_at(reader.table().get("max_body_bytes")->source(),
                      "max_body_bytes: must be positive");
    }
    http.max_body_bytes = *max_body;
  }
  http.username = reader.string("username").value_or("");
  http.password = reader.secret(context);
  http.ca_file = read_tls_file(reader, "ca_file");
  http.client_cert = read_tls_file(reader, "client_cert");
  http.client_key = read_tls_file(reader, "client_key");
  if (const toml::node* key = reader.table().get("client_key");
      key && !reader.table().get("client_cert")) {
    reader.error_at(key->source(), fmt::format("{}: client_key needs client_cert", context));
  }
  if (auto days = reader.integer("min_cert_days")) {
    if (*days < 0) {
      reader.error_at(reader.table().get("min_cert_days")->source(),
                      "min_cert_days: must be 0 (no warning) or more days");
    } else {
      http.min_cert_days = *days;
    }
  }
  return http;
}

// Reads the required `address = "host:port"` of tcp and redis probes (redis: or a socket's path).
void read_address(TableReader& reader, ProbeConfig& probe, const std::string& context,
                  std::string& host, std::string& port) {
  std::string address = reader.required_string("address", context);
  if (!address.empty() && !split_host_port(address, host, port)) {
    reader.error_at(reader.table().get("address")->source(),
                    fmt::format("address: expected host:port, got \"{}\"", address));
  }
  probe.target_display = address;
}

ProbeSettings read_tcp(TableReader& reader, ProbeConfig& probe, const std::string& context) {
  TcpSettings tcp;
  read_address(reader, probe, context, tcp.host, tcp.port);
  return tcp;
}

// Reads `key` as one of `names` (the enum's values in order); the default stays on error.
template <typename Enum, size_t N>
Enum read_choice(TableReader& reader, std::string_view key,
                 const std::array<std::string_view, N>& names, Enum fallback) {
  auto text = reader.string(key);
  if (!text) return fallback;
  for (size_t i = 0; i < N; ++i) {
    if (*text == names[i]) return static_cast<Enum>(i);
  }
  std::string expected;
  for (std::string_view name : names)
    expected += (expected.empty() ? "" : ", ") + std::string(name);
  reader.error_at(
      reader.table().get(key)->source(),
      fmt::format("{}: unknown value \"{}\" (expected one of: {})", key, *text, expected));
  return fallback;
}

ProbeSettings read_postgres(TableReader& reader, ProbeConfig& probe, const std::string& context) {
  PostgresSettings pg;
  pg.dsn = reader.required_string("dsn", context);
  if (!pg.dsn.empty()) {
    char* error = nullptr;
    PQconninfoOption* options = PQconninfoParse(pg.dsn.c_str(), &error);
    if (!options) {
      // libpq's message may quote the whole DSN, password included: say less.
      reader.error_at(
          reader.table().get("dsn")->source(),
          "dsn: not a valid libpq connection string or URI (check quoting, and percent-encode "
          "special characters in a URI)");
      PQfreemem(error);
    }
    bool names_host = false;
    bool names_service = std::getenv("PGSERVICE") != nullptr;
    for (PQconninfoOption* option = options; option && option->keyword; ++option) {
      if (!option->val) continue;
      const std::string_view keyword = option->keyword;
      names_host = names_host || keyword == "host" || keyword == "hostaddr";
      names_service = names_service || keyword == "service";
    }
    if (names_service && !names_host) {
      // libpq would read the host from pg_service.conf and resolve it with a blocking lookup.
      reader.error_at(
          reader.table().get("dsn")->source(),
          "dsn: a service (service= or PGSERVICE) without host= is not supported: blip resolves "
          "host names itself, so name the host in the dsn");
    }
    PQconninfoFree(options);
    probe.target_display = redact_postgres_dsn(pg.dsn);
  }
  pg.password = reader.secret(context);
  pg.mode =
      read_choice(reader, "mode", std::array<std::string_view, 3>{"read", "write", "replication"},
                  PostgresSettings::Mode::read);
  if (auto query = reader.string("query")) {
    if (pg.mode != PostgresSettings::Mode::read) {
      reader.error_at(reader.table().get("query")->source(),
                      "query: only used with mode = \"read\"");
    }
    pg.query = *query;
  }
  pg.role = read_choice(reader, "role", std::array<std::string_view, 2>{"standby", "primary"},
                        PostgresSettings::Role::standby);
  if (auto max_lag = reader.duration("max_lag")) pg.max_lag_ms = *max_lag;
  if (auto min_replicas = reader.integer("min_replicas")) {
    if (*min_replicas < 1)
      reader.error_at(reader.table().get("min_replicas")->source(),
                      "min_replicas: must be at least 1");
    pg.min_replicas = static_cast<int>(*min_replicas);
  }
  pg.reconnect_each = reader.boolean("reconnect_each").value_or(false);
  return pg;
}

ProbeSettings read_redis(TableReader& reader, ProbeConfig& probe, const std::string& context) {
  RedisSettings redis;
  // Redis on the same machine usually listens on a Unix socket too (`unixsocket`): an absolute
  // path is its address.
  if (auto address = reader.string("address"); address && address->starts_with('/')) {
    redis.host = *address;
    probe.target_display = *address;
  } else {
    read_address(reader, probe, context, redis.host, redis.port);
  }
  redis.username = reader.string("username").value_or("");
  redis.password = reader.secret(context);
  if (auto db = reader.integer("db")) {
    if (*db < 0) reader.error_at(reader.table().get("db")->source(), "db: must be 0 or more");
    redis.db = *db;
  }
  redis.mode =
      read_choice(reader, "mode", std::array<std::string_view, 3>{"ping", "write", "sidekiq"},
                  RedisSettings::Mode::ping);
  if (reader.table().get("queues")) {
    redis.queues = reader.string_list("queues");
    if (redis.queues.empty())
      reader.error_at(reader.table().get("queues")->source(), "queues: must not be empty");
  }
  redis.key_namespace = reader.string("namespace").value_or("");
  if (auto latency = reader.duration("max_latency")) redis.max_latency_ms = *latency;
  if (auto age = reader.duration("max_heartbeat_age")) redis.max_heartbeat_age_ms = *age;
  return redis;
}

using SettingsReader = std::function<ProbeSettings(TableReader&, ProbeConfig&, const std::string&)>;

// The probe types, and how to read each one's keys: the one place a probe type
// is named. Each reader makes one alternative of ProbeSettings, and the probe
// registry builds a probe from that alternative (a type without a factory
// does not compile).
const std::map<std::string, SettingsReader, std::less<>> kProbeTypeReaders{
    {"http", read_http},
    {"postgres", read_postgres},
    {"redis", read_redis},
    {"tcp", read_tcp},
};

std::string known_types() {
  std::string out;
  for (const auto& [name, reader] : kProbeTypeReaders) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// A name for probes, jobs and alerts: shown in reports, URLs of the feed and metrics labels.
void check_unique_name(TableReader& reader, const std::string& name, const LoadedConfig& loaded) {
  // Missing is reported by required_string; present but empty (or a ${VAR} set to "") here.
  if (name.empty() && reader.table().get("name"))
    reader.error_at(reader.where("name"), "name must not be empty");
  if (name == kBlipComponent) {
    reader.error_at(reader.where("name"),
                    "the name \"blip\" is taken: alerts about blip itself come under it");
  }
  for (const ComponentRef& existing : loaded.components()) {
    if (!name.empty() && existing->name == name) {
      reader.error_at(
          reader.where("name"),
          fmt::format("duplicate probe name \"{}\" (first defined at {})", name, existing->source));
    }
  }
}

// `display_name` and `description`: what the public status page shows of a probe or job.
void read_presentation(TableReader& reader, ComponentConfig& component) {
  constexpr size_t kMaxDisplayName = 100;
  constexpr size_t kMaxDescription = 500;
  if (auto display_name = reader.string("display_name")) {
    if (display_name->empty() || display_name->size() > kMaxDisplayName) {
      reader.error_at(reader.where("display_name"),
                      fmt::format("display_name: must be 1 to {} characters", kMaxDisplayName));
    }
    component.display_name = std::move(display_name);
  }
  if (auto description = reader.string("description")) {
    if (description->size() > kMaxDescription) {
      reader.error_at(reader.where("description"),
                      fmt::format("description: at most {} characters", kMaxDescription));
    }
    component.description = std::move(description);
  }
}

// An alert's or a maintenance window's name, `fallback` when the table has none.
std::string optional_name(TableReader& reader, std::string fallback) {
  std::optional<std::string> name = reader.string("name");
  if (!name) return fallback;
  if (name->empty()) reader.error_at(reader.where("name"), "name must not be empty");
  return *name;
}

void read_probe(TableReader& reader, const std::string& file, LoadedConfig& loaded) {
  ProbeConfig probe;
  probe.name = reader.required_string("name", "probe");
  std::string context = probe.name.empty() ? "probe" : fmt::format("probe \"{}\"", probe.name);
  probe.source = fmt::format("{}:{}", file, reader.table().source().begin.line);
  probe.type = reader.required_string("type", context);
  auto type_reader = kProbeTypeReaders.find(probe.type);
  if (!probe.type.empty() && type_reader == kProbeTypeReaders.end()) {
    reader.error_at(reader.table().get("type")->source(),
                    fmt::format("{}: unknown probe type \"{}\" (expected one of: {})", context,
                                probe.type, known_types()));
  }
  if (auto interval = reader.duration("interval")) {
    probe.interval_ms = *interval;
    if (*interval < kMinimumIntervalMs) {
      reader.error_at(
          reader.table().get("interval")->source(),
          fmt::format("interval: {} is below the minimum of {}", format_duration_ms(*interval),
                      format_duration_ms(kMinimumIntervalMs)));
    }
  }
  if (auto timeout = reader.duration("timeout")) {
    probe.timeout_ms = *timeout;
    if (*timeout <= 0) {
      reader.error_at(reader.table().get("timeout")->source(),
                      "timeout: must be greater than zero");
    } else if (*timeout > kMaximumTimeoutMs) {
      // A probe that may wait longer than this is not an uptime probe; it also keeps
      // Postgres' statement_timeout (a 32-bit millisecond count) in range.
      reader.error_at(
          reader.table().get("timeout")->source(),
          fmt::format("timeout: {} is above the maximum of {}", format_duration_ms(*timeout),
                      format_duration_ms(kMaximumTimeoutMs)));
    }
  }
  if (probe.interval_ms >= kMinimumIntervalMs && probe.timeout_ms > 0 &&
      probe.timeout_ms <= kMaximumTimeoutMs) {
    // A hung target keeps every attempt until its deadline: each one is a socket.
    const int64_t in_flight = probe.attempts_in_flight();
    if (in_flight > kMaxAttemptsInFlight) {
      const toml::node* key = reader.table().get("timeout") ? reader.table().get("timeout")
                                                            : reader.table().get("interval");
      reader.error_at(
          key ? key->source() : reader.table().source(),
          fmt::format(
              "timeout: {} at an interval of {} allows {} attempts in flight; at most {} (lower "
              "the timeout or raise the interval)",
              format_duration_ms(probe.timeout_ms), format_duration_ms(probe.interval_ms),
              in_flight, kMaxAttemptsInFlight));
    }
  }
  probe.degraded_after_ms = reader.duration("degraded_after");
  if (auto confirm = reader.integer("confirm")) {
    if (*confirm < 1 || *confirm > 1000) {
      reader.error_at(reader.table().get("confirm")->source(),
                      "confirm: must be between 1 and 1000");
    }
    probe.confirm = static_cast<int>(*confirm);
  }
  probe.tags = reader.string_list("tags");
  read_presentation(reader, probe);
  if (type_reader != kProbeTypeReaders.end()) {
    probe.settings = type_reader->second(reader, probe, context);
    // Only report unknown keys once the type is known: they depend on it.
    reader.reject_unknown_keys(context);
  }
  check_unique_name(reader, probe.name, loaded);
  loaded.probes.push_back(std::move(probe));
}

constexpr size_t kMinTokenLength = 16;
// 128 bits as hex (openssl rand -hex 16): shorter tokens load, with a warning.
constexpr size_t kRecommendedTokenLength = 32;

// A secret token from `key` or `<key>_file` (a job's check-in token, the operator's token):
// long enough not to guess, nothing a URL path or header would need escaped. Empty and an
// error when it is missing or too short; a warning when it is short of 128 bits.
std::string read_token(TableReader& reader, const std::string& context, std::string_view key,
                       const std::string& file, LoadedConfig& loaded) {
  const std::string file_key = fmt::format("{}_file", key);
  const size_t errors_before = loaded.errors.size();
  std::string token = reader.secret(context, key);
  // secret() said why (both given, a file it cannot read): its length would be a second error.
  if (loaded.errors.size() > errors_before) return token;
  const bool inline_token = reader.table().get(key) != nullptr;
  const std::string_view given = inline_token ? key : std::string_view(file_key);
  if (!inline_token && !reader.table().get(file_key)) {
    reader.error_at_table(
        fmt::format("{}: missing \"{}\" or \"{}\" (a secret of at least {} characters)", context,
                    key, file_key, kMinTokenLength));
  } else if (token.size() < kMinTokenLength ||
             token.find_first_of("/?#%& \t\r\n") != std::string::npos) {
    reader.error_at(
        reader.where(given),
        fmt::format("{}: must be at least {} characters, without / ? # % & or spaces (try: openssl "
                    "rand -hex 16)",
                    given, kMinTokenLength));
  } else if (token.size() < kRecommendedTokenLength) {
    const toml::source_position at = reader.where(given).begin;
    loaded.warnings.push_back(
        {file, static_cast<int>(at.line), static_cast<int>(at.column),
         fmt::format("{}: {} characters; {} or more (128 bits as hex) make it unguessable "
                     "(try: openssl rand -hex 16)",
                     given, token.size(), kRecommendedTokenLength)});
  }
  return token;
}

void read_job(TableReader& reader, const std::string& file, LoadedConfig& loaded) {
  JobConfig job;
  job.name = reader.required_string("name", "job");
  const std::string context = job.name.empty() ? "job" : fmt::format("job \"{}\"", job.name);
  job.source = fmt::format("{}:{}", file, reader.table().source().begin.line);
  JobSettings& settings = job.settings;
  settings.time_zone = reader.time_zone(context);
  auto schedule = reader.string("schedule");
  auto period = reader.duration("period");
  if (schedule && period) {
    reader.error_at(reader.where("period"),
                    fmt::format("{}: set schedule or period, not both", context));
  } else if (!schedule && !period) {
    reader.error_at_table(
        fmt::format("{}: missing \"schedule\" (a cron expression) or \"period\"", context));
  }
  if (schedule) {
    std::string problem;
    if (!CronSchedule::parse(*schedule, settings.time_zone, &problem)) {
      reader.error_at(reader.where("schedule"), fmt::format("schedule: {}", problem));
    }
    settings.schedule = *schedule;
  }
  if (period) {
    if (*period < 1000) reader.error_at(reader.where("period"), "period: must be at least 1s");
    settings.period_ms = *period;
  }
  if (auto grace = reader.duration("grace")) {
    if (*grace < 0) reader.error_at(reader.where("grace"), "grace: must not be negative");
    settings.grace_ms = *grace;
  }
  if (auto max_run = reader.duration("max_run")) {
    if (*max_run <= 0)
      reader.error_at(reader.where("max_run"), "max_run: must be greater than zero");
    settings.max_run_ms = *max_run;
  }
  settings.token = read_token(reader, context, "token", file, loaded);
  job.tags = reader.string_list("tags");
  read_presentation(reader, job);
  job.target_display = settings.schedule.empty()
                           ? fmt::format("every {}", format_duration_ms(settings.period_ms))
                           : fmt::format("cron \"{}\" {}", settings.schedule, settings.time_zone);
  reader.reject_unknown_keys(context);
  check_unique_name(reader, job.name, loaded);
  loaded.jobs.push_back(std::move(job));
}

// Where an alert, a remote write or the status page's url may point.
bool has_http_scheme(std::string_view url) {
  return url.starts_with("http://") || url.starts_with("https://");
}

// `headers` (name -> value, `${ENV}` expanded) and `header_files` (name -> a file holding the
// value, as `password_file`): header values are often secrets. An alert's and a remote write's.
std::vector<std::pair<std::string, std::string>> read_headers(TableReader& reader) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const bool from_files : {false, true}) {
    const std::string_view key = from_files ? "header_files" : "headers";
    const toml::node* node = reader.find(key);
    if (!node) continue;
    const toml::table* table = node->as_table();
    if (!table) {
      reader.error_at(node->source(), fmt::format("{}: expected a table of header names to {}", key,
                                                  from_files ? "files" : "values"));
      continue;
    }
    for (auto&& [name, value] : *table) {
      std::optional<std::string> text = reader.expand(value, key);
      if (text && from_files) text = reader.secret_file(value, key, *text);
      if (text) headers.emplace_back(std::string(name.str()), std::move(*text));
    }
  }
  return headers;
}

// The `timeout` of one send (an alert's, a remote write's): within (0s, 60s]; `fallback` when
// absent.
int64_t read_send_timeout(TableReader& reader, int64_t fallback) {
  auto timeout = reader.duration("timeout");
  if (!timeout) return fallback;
  if (*timeout <= 0 || *timeout > 60'000)
    reader.error_at(reader.where("timeout"), "timeout: must be within (0s, 60s]");
  return *timeout;
}

// A `from` or one of `to`'s addresses; an error at `node` when it is not one.
std::optional<MailAddress> read_mail_address(TableReader& reader, const toml::node& node,
                                             std::string_view key) {
  auto text = reader.expand(node, key);
  if (!text) return std::nullopt;
  std::string problem;
  auto address = parse_mail_address(*text, &problem);
  if (!address) reader.error_at(node.source(), fmt::format("{}: {}", key, problem));
  return address;
}

// kind = "email": an smtp:// or smtps:// url without user info (the login has keys of its
// own, so the url can be logged as scheme://host:port), `from`, `to`, AUTH, STARTTLS.
void read_mail_settings(TableReader& reader, AlertConfig& alert, const std::string& context) {
  MailSettings& mail = alert.mail;
  const bool smtps = alert.url.starts_with("smtps://");
  if (!alert.url.empty()) {
    std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> url(curl_url(), curl_url_cleanup);
    char* user = nullptr;
    if (!alert.url.starts_with("smtp://") && !smtps) {
      reader.error_at(reader.where("url"), "url: must start with smtp:// or smtps://");
    } else if (curl_url_set(url.get(), CURLUPART_URL, alert.url.c_str(), 0) != CURLUE_OK) {
      reader.error_at(reader.where("url"), "url: not a valid URL");
    } else if (curl_url_get(url.get(), CURLUPART_USER, &user, 0) == CURLUE_OK) {
      reader.error_at(reader.where("url"),
                      "url: the login goes in username and password (or password_file), not in "
                      "the url");
    }
    curl_free(user);
  }
  if (const toml::node* node = reader.find("from")) {
    if (auto from = read_mail_address(reader, *node, "from")) mail.from = std::move(*from);
  } else {
    reader.error_at_table(fmt::format("{}: missing required key \"from\"", context));
  }
  if (const toml::node* node = reader.find("to")) {
    const toml::array* list = node->as_array();
    if (!list || list->empty()) {
      reader.error_at(node->source(), "to: expected a list of at least one address");
    } else {
      for (const toml::node& item : *list) {
        if (auto to = read_mail_address(reader, item, "to")) mail.to.push_back(std::move(*to));
      }
    }
  } else {
    reader.error_at_table(fmt::format("{}: missing required key \"to\"", context));
  }
  mail.username = reader.string("username").value_or("");
  mail.password = reader.secret(context);
  // AUTH takes both: one without the other is a half-written setting, not "no auth".
  const bool has_username = reader.table().get("username") != nullptr;
  const bool has_password =
      reader.table().get("password") != nullptr || reader.table().get("password_file") != nullptr;
  if (has_password && !has_username) {
    reader.error_at(reader.where(reader.table().get("password") ? "password" : "password_file"),
                    fmt::format("{}: a password needs username", context));
  } else if (has_username && !has_password) {
    reader.error_at(reader.where("username"),
                    fmt::format("{}: username needs password or password_file", context));
  }
  if (reader.table().get("starttls") && smtps) {
    reader.error_at(reader.where("starttls"),
                    "starttls: only for smtp:// (smtps:// is TLS from the first byte)");
  }
  mail.starttls =
      read_choice(reader, "starttls", std::array<std::string_view, 3>{"try", "require", "off"},
                  MailSettings::StartTls::try_upgrade);
  mail.subject_prefix = reader.string("subject_prefix").value_or("");
}

void read_alert(TableReader& reader, const std::string& file, LoadedConfig& loaded) {
  AlertConfig alert;
  alert.source = fmt::format("{}:{}", file, reader.table().source().begin.line);
  constexpr std::array<std::string_view, kAlertKindCount> kinds{"webhook", "slack", "ntfy",
                                                                "alertmanager", "email"};
  alert.kind = read_choice(reader, "kind", kinds, AlertConfig::Kind::webhook);
  if (!reader.table().get("kind")) reader.error_at_table("alert: missing required key \"kind\"");
  alert.name =
      optional_name(reader, fmt::format("{}-{}", to_string(alert.kind), loaded.alerts.size() + 1));
  const std::string context = fmt::format("alert \"{}\"", alert.name);
  alert.url = reader.required_string("url", context);
  if (alert.kind == AlertConfig::Kind::email) {
    read_mail_settings(reader, alert, context);
  } else {
    if (!alert.url.empty() && !has_http_scheme(alert.url)) {
      reader.error_at(reader.where("url"), "url: must start with http:// or https://");
    }
    alert.headers = read_headers(reader);
  }
  alert.group = read_choice(reader, "group", std::array<std::string_view, 2>{"incident", "probe"},
                            AlertConfig::Group::incident);
  alert.selector = reader.selector();
  if (auto send_resolved = reader.boolean("send_resolved")) alert.send_resolved = *send_resolved;
  if (auto repeat = reader.duration("repeat")) {
    if (*repeat < 60'000) reader.error_at(reader.where("repeat"), "repeat: must be at least 1m");
    alert.repeat_ms = *repeat;
  }
  alert.timeout_ms = read_send_timeout(reader, alert.timeout_ms);
  if (auto retry_for = reader.duration("retry_for")) {
    if (*retry_for < 0)
      reader.error_at(reader.where("retry_for"), "retry_for: must not be negative");
    alert.retry_for_ms = *retry_for;
  }
  if (const toml::node* node = reader.find("flapping")) {
    const toml::table* table = node->as_table();
    if (!table) {
      reader.error_at(node->source(),
                      "flapping: expected a table like { outages = 3, within = \"1h\" }");
    } else {
      TableReader rule(*table, file, loaded.errors);
      FlappingRule flapping;
      if (auto outages = rule.integer("outages")) {
        if (*outages < 2 || *outages > 1000)
          rule.error_at(rule.where("outages"), "flapping.outages: must be between 2 and 1000");
        flapping.outages = static_cast<int>(*outages);
      }
      if (auto within = rule.duration("within")) {
        if (*within < 60'000)
          rule.error_at(rule.where("within"), "flapping.within: must be at least 1m");
        flapping.within_ms = *within;
      }
      rule.reject_unknown_keys("flapping");
      alert.flapping = flapping;
    }
  }
  reader.reject_unknown_keys(context);
  for (const AlertConfig& existing : loaded.alerts) {
    if (existing.name == alert.name) {
      reader.error_at(reader.where("name"),
                      fmt::format("duplicate alert name \"{}\" (first defined at {})", alert.name,
                                  existing.source));
    }
  }
  loaded.alerts.push_back(std::move(alert));
}

void read_maintenance(TableReader& reader, const std::string& file, LoadedConfig& loaded) {
  MaintenanceConfig window;
  window.source = fmt::format("{}:{}", file, reader.table().source().begin.line);
  window.name = optional_name(reader, fmt::format("maintenance-{}", loaded.maintenance.size() + 1));
  const std::string context = fmt::format("maintenance \"{}\"", window.name);
  window.time_zone = reader.time_zone(context);
  window.start = reader.required_string("start", context);
  if (!window.start.empty()) {
    if (auto problem = validate_maintenance_start(window.start, window.time_zone)) {
      reader.error_at(reader.where("start"), fmt::format("start: {}", *problem));
    }
  }
  if (auto duration = reader.duration("duration")) {
    if (*duration <= 0)
      reader.error_at(reader.where("duration"), "duration: must be greater than zero");
    window.duration_ms = *duration;
  } else {
    reader.error_at_table(fmt::format("{}: missing required key \"duration\"", context));
  }
  window.selector = reader.selector();
  reader.reject_unknown_keys(context);
  loaded.maintenance.push_back(std::move(window));
}

// A URL curl can parse (what it sends to), checked without ever showing the URL: it may hold a
// secret.
bool parsable_url(const std::string& url) {
  std::unique_ptr<CURLU, decltype(&curl_url_cleanup)> handle(curl_url(), curl_url_cleanup);
  return handle && curl_url_set(handle.get(), CURLUPART_URL, url.c_str(), 0) == CURLUE_OK;
}

// A required http(s) `url` that may hold a secret (user info, a token in its path or query): no
// error quotes it.
std::optional<std::string> read_secret_http_url(TableReader& reader, const std::string& context) {
  std::optional<std::string> url = reader.string("url");
  if (!reader.table().get("url")) {
    reader.error_at_table(fmt::format("{}: missing required key \"url\"", context));
  } else if (url && !has_http_scheme(*url)) {
    reader.error_at(reader.where("url"), "url: must start with http:// or https://");
  } else if (url && !parsable_url(*url)) {
    reader.error_at(reader.where("url"), "url: not a valid URL");
  }
  return url;
}

// `[[remote_write]]`. The URL may hold a secret (user info, a token in its path or query), so
// no error quotes it; one that repeats an earlier table's URL is an error (every sample twice).
void read_remote_write(TableReader& reader, const std::string& file, LoadedConfig& loaded) {
  const std::string context = "remote_write";
  RemoteWriteConfig remote;
  remote.source = fmt::format("{}:{}", file, reader.table().source().begin.line);
  const std::optional<std::string> url = read_secret_http_url(reader, context);
  remote.url = url.value_or("");
  for (const RemoteWriteConfig& existing : loaded.remote_writes) {
    if (url && !url->empty() && existing.url == *url) {
      reader.error_at(reader.where("url"),
                      fmt::format("url: the same endpoint as the [[remote_write]] at {} (every "
                                  "sample would be sent twice)",
                                  existing.source));
      break;
    }
  }
  remote.headers = read_headers(reader);
  remote.username = reader.string("username").value_or("");
  if (const toml::node* node = reader.find("password_file")) {
    if (auto path = reader.expand(*node, "password_file"))
      remote.password = reader.secret_file(*node, "password_file", *path).value_or("");
  }
  // Basic auth takes both: one without the other is a half-written setting, not "no auth".
  const bool has_username = reader.table().get("username") != nullptr;
  const bool has_password_file = reader.table().get("password_file") != nullptr;
  if (has_password_file && !has_username) {
    reader.error_at(reader.where("password_file"),
                    fmt::format("{}: password_file needs username", context));
  } else if (has_username && !has_password_file) {
    reader.error_at(reader.where("username"),
                    fmt::format("{}: username needs password_file", context));
  }
  remote.timeout_ms = read_send_timeout(reader, remote.timeout_ms);
  reader.reject_unknown_keys(context);
  loaded.remote_writes.push_back(std::move(remote));
}

// `[[heartbeat]]`. Like a remote write's, the URL may hold a secret.
void read_heartbeat(TableReader& reader, const std::string& file, LoadedConfig& loaded) {
  const std::string context = "heartbeat";
  HeartbeatConfig heartbeat;
  heartbeat.source = fmt::format("{}:{}", file, reader.table().source().begin.line);
  const std::optional<std::string> url = read_secret_http_url(reader, context);
  heartbeat.url = url.value_or("");
  heartbeat.headers = read_headers(reader);
  if (auto every = reader.duration("every")) {
    if (*every < 1000) {
      reader.error_at(reader.where("every"), "every: at least 1s");
    } else {
      heartbeat.every_ms = *every;
    }
  }
  heartbeat.timeout_ms = read_send_timeout(reader, heartbeat.timeout_ms);
  reader.reject_unknown_keys(context);
  loaded.heartbeats.push_back(std::move(heartbeat));
}

void read_page(TableReader& top, const toml::node& node, const std::string& file,
               LoadedConfig& loaded) {
  const toml::table* table = node.as_table();
  if (!table) {
    top.error_at(node.source(), "page: expected a [page] table");
    return;
  }
  const std::string source = fmt::format("{}:{}", file, table->source().begin.line);
  if (!loaded.page.source.empty()) {
    top.error_at(table->source(), fmt::format("page: a second [page] table (the first is at {})",
                                              loaded.page.source));
    return;
  }
  TableReader reader(*table, file, loaded.errors);
  PageConfig page;
  page.source = source;
  if (auto name = reader.string("name")) {
    if (name->empty())
      reader.error_at(table->get("name")->source(), "page: name must not be empty");
    page.name = *name;
  }
  if (auto url = reader.string("url")) {
    if (!has_http_scheme(*url)) {
      reader.error_at(table->get("url")->source(), "page: url must start with http:// or https://");
    }
    page.url = *url;
  }
  if (auto zone = reader.string("time_zone")) {
    if (!known_time_zone(*zone)) {
      reader.error_at(
          table->get("time_zone")->source(),
          fmt::format("page: unknown time zone \"{}\" (like Europe/Berlin or Etc/UTC)", *zone));
    }
    page.time_zone = *zone;
  }
  page.show_details = reader.boolean("show_details").value_or(false);
  // Optional: without it, the private face takes no notes or notices.
  if (table->get("operator_token") || table->get("operator_token_file"))
    page.operator_token = read_token(reader, "page", "operator_token", file, loaded);
  reader.reject_unknown_keys("page");
  loaded.page = std::move(page);
}

void read_file_tables(const toml::table& root, const std::string& file, LoadedConfig& loaded) {
  TableReader top(root, file, loaded.errors);
  const toml::node* page = top.find("page");
  using TableArrayReader = void (*)(TableReader&, const std::string&, LoadedConfig&);
  const std::array<std::pair<std::string_view, TableArrayReader>, 6> arrays{
      {{"probe", read_probe},
       {"job", read_job},
       {"alert", read_alert},
       {"maintenance", read_maintenance},
       {"remote_write", read_remote_write},
       {"heartbeat", read_heartbeat}}};
  std::vector<std::tuple<std::string_view, const toml::node*, TableArrayReader>> found;
  for (const auto& [key, read] : arrays) {
    if (const toml::node* node = top.find(key)) found.emplace_back(key, node, read);
  }
  top.reject_unknown_keys(
      "top level (expected [[probe]], [[job]], [[alert]], [[maintenance]], [[remote_write]] and "
      "[[heartbeat]] tables and at most one [page] table)");
  if (page) read_page(top, *page, file, loaded);
  for (const auto& [key, node, read] : found) {
    const toml::array* array = node->as_array();
    if (!array || !array->is_array_of_tables()) {
      top.error_at(node->source(), fmt::format("{0}: expected [[{0}]] tables", key));
      continue;
    }
    for (const toml::node& item : *array) {
      TableReader reader(*item.as_table(), file, loaded.errors);
      read(reader, file, loaded);
    }
  }
}

// Reads one file's tables; `parse` makes the TOML tree (from the file, or from text).
void load_file(const std::string& file, const std::function<toml::table()>& parse,
               LoadedConfig& loaded) {
  const size_t first_error = loaded.errors.size();
  toml::table root;
  try {
    root = parse();
  } catch (const toml::parse_error& error) {
    loaded.errors.push_back({file, static_cast<int>(error.source().begin.line),
                             static_cast<int>(error.source().begin.column),
                             std::string(error.description())});
    return;
  }
  read_file_tables(root, file, loaded);
  // Keys are checked in a fixed order; show each file's errors in line order.
  std::stable_sort(loaded.errors.begin() + static_cast<std::ptrdiff_t>(first_error),
                   loaded.errors.end(), [](const ConfigError& a, const ConfigError& b) {
                     return std::tie(a.line, a.column) < std::tie(b.line, b.column);
                   });
}

}  // namespace

LoadedConfig load_config_text(std::string_view toml_text, const std::string& file_name) {
  LoadedConfig loaded;
  load_file(
      file_name, [&] { return toml::parse(toml_text, file_name); }, loaded);
  return loaded;
}

std::vector<ComponentRef> LoadedConfig::components() const {
  // A component's file is its source without ":line"; files load in name order.
  auto file_of = [](const ComponentConfig& component) {
    return std::string_view(component.source).substr(0, component.source.rfind(':'));
  };
  std::vector<ComponentRef> ordered;
  auto job = jobs.begin();
  for (const ProbeConfig& probe : probes) {
    for (; job != jobs.end() && file_of(*job) < file_of(probe); ++job) ordered.emplace_back(*job);
    ordered.emplace_back(probe);
  }
  for (; job != jobs.end(); ++job) ordered.emplace_back(*job);
  return ordered;
}

ComponentChanges compare_components(const std::vector<ComponentRef>& running,
                                    const std::vector<ComponentRef>& next) {
  std::map<std::string, size_t> by_name;
  for (size_t index = 0; index < running.size(); ++index) {
    if (running[index]) by_name.emplace(running[index]->name, index);
  }
  ComponentChanges changes;
  std::set<size_t> kept;
  for (const ComponentRef& component : next) {
    auto found = by_name.find(component->name);
    if (found != by_name.end() && running[found->second].same_as(component)) {
      changes.kept.emplace_back(found->second);
      kept.insert(found->second);
    } else {
      changes.kept.emplace_back(std::nullopt);
    }
  }
  for (const auto& [name, index] : by_name) {
    if (!kept.contains(index)) changes.removed.push_back(index);
  }
  return changes;
}

LoadedConfig load_config_directory(const std::string& directory) {
  LoadedConfig loaded;
  std::error_code error;
  std::vector<std::filesystem::path> files;
  for (std::filesystem::directory_iterator it(directory, error), end; !error && it != end;
       it.increment(error)) {
    if (it->path().extension() == ".toml") files.push_back(it->path());
  }
  if (error) {
    loaded.errors.push_back(
        {directory, 0, 0, "cannot read configuration directory: " + error.message()});
    return loaded;
  }
  std::sort(files.begin(), files.end());
  for (const auto& path : files) {
    const std::string file = path.string();
    load_file(
        file, [&] { return toml::parse_file(file); }, loaded);
  }
  if (files.empty()) {
    loaded.errors.push_back({directory, 0, 0, "no *.toml files in configuration directory"});
  } else if (loaded.probes.empty() && loaded.jobs.empty() && loaded.errors.empty()) {
    loaded.errors.push_back({directory, 0, 0, "no [[probe]] or [[job]] defined"});
  }
  return loaded;
}

}  // namespace blip

#pragma once
#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace blip {

struct StatusRange {
  int first;
  int last;
  bool operator==(const StatusRange&) const = default;
};

struct HttpSettings {
  std::string url;  // may hold a password: never log it, use ProbeConfig::target_display
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<StatusRange> expect_status{{200, 399}};
  std::string expect_body;
  bool follow_redirects = false;
  bool tls_verify = true;
  bool reuse_connection = false;
  int64_t max_body_bytes = 1 << 20;
  std::string username;
  std::string password;
  std::vector<std::string> redact_query;  // more secret query parameter names
  // TLS: a private CA (PEM; instead of the system store) and a client
  // certificate and key for mutual TLS, as paths resolved at load time.
  std::string ca_file;
  std::string client_cert;
  std::string client_key;
  // A certificate that expires within this many days makes a degraded sample; 0: never.
  int64_t min_cert_days = 14;
  bool operator==(const HttpSettings&) const = default;
};

struct TcpSettings {
  std::string host;
  std::string port;
  bool operator==(const TcpSettings&) const = default;
};

struct PostgresSettings {
  enum class Mode { read, write, replication };
  enum class Role { standby, primary };
  std::string dsn;       // libpq conninfo or URI; may hold a password: never log it
  std::string password;  // from password / password_file, passed to libpq separately
  Mode mode = Mode::read;
  std::string query = "SELECT 1";  // read mode
  Role role = Role::standby;       // replication mode
  int64_t max_lag_ms = 30'000;     // replication mode, standby
  int min_replicas = 1;            // replication mode, primary
  bool reconnect_each = false;
  bool operator==(const PostgresSettings&) const = default;
};

struct RedisSettings {
  enum class Mode { ping, write, sidekiq };
  std::string host;
  std::string port;
  std::string username;
  std::string password;
  int64_t db = 0;
  Mode mode = Mode::ping;
  std::vector<std::string> queues{"default", "push",      "ingress", "mailers",
                                  "pull",    "scheduler", "fasp"};
  std::string key_namespace;  // redis-namespace prefix, e.g. "mastodon"
  int64_t max_latency_ms = 60'000;
  int64_t max_heartbeat_age_ms = 60'000;
  bool operator==(const RedisSettings&) const = default;
};

using ProbeSettings = std::variant<HttpSettings, TcpSettings, PostgresSettings, RedisSettings>;

// A probe blip runs, or a job that reports in (`[[job]]`).
enum class ComponentKind { probe, job };

// The component alerts about blip itself come under (an alert selects it as
// `probes = ["blip"]`): no probe or job may take its name.
inline constexpr std::string_view kBlipComponent = "blip";

// What a probe and a job have in common: each is a component of the status
// page with samples, outages, alerts and a row of the store's `probes` table.
struct ComponentConfig {
  ComponentKind kind = ComponentKind::probe;
  std::string name;
  std::string type;            // a probe's type, or kJobType: as stored and shown
  int64_t interval_ms = 1000;  // how often it has a sample
  int confirm = 2;             // consecutive down samples that open an outage
  std::vector<std::string> tags;
  // What the status page calls the component (default: `name`) and says of it: public text.
  std::optional<std::string> display_name;
  std::optional<std::string> description;
  std::string target_display;  // the target with any password redacted
  std::string source;          // "file:line" where it is defined
  bool operator==(const ComponentConfig&) const = default;
  // The name people see on the status page.
  const std::string& shown_name() const { return display_name ? *display_name : name; }
};

// A `[[probe]]`: blip runs an attempt every interval (the registry builds the
// probe its settings call for).
struct ProbeConfig : ComponentConfig {
  int64_t timeout_ms = 2000;
  std::optional<int64_t> degraded_after_ms;
  ProbeSettings settings;

  // Attempts in flight at once when the target hangs: timeout ÷ interval, rounded up.
  int64_t attempts_in_flight() const {
    return (timeout_ms + interval_ms - 1) / std::max<int64_t>(interval_ms, 1);
  }

  // The same probe: every setting alike, wherever in the files it is defined.
  bool same_probe_as(const ProbeConfig& other) const {
    ProbeConfig moved = other;
    moved.source = source;
    return *this == moved;
  }
  bool operator==(const ProbeConfig&) const = default;
};

// When a job should start and how long it may run, and its token.
struct JobSettings {
  std::string schedule;               // a cron expression; empty when `period` is set
  std::string time_zone = "Etc/UTC";  // the zone `schedule` is read in
  int64_t period_ms = 0;              // instead of a schedule: a start at least this often
  int64_t grace_ms = 300'000;         // how late a start may be
  int64_t max_run_ms = 0;             // the longest a run may take; 0: no limit
  std::string token;                  // secret: never log it, never show it
  bool operator==(const JobSettings&) const = default;
};

// The type the store, the feed and alerts show for a job.
inline constexpr std::string_view kJobType = "job";

// A push monitor (`[[job]]`): blip does not probe it, the job reports in
// through /ping/<token>. Judged once a second, each judgment a sample, so its
// outages, incidents, feed component and metrics are a probe's.
struct JobConfig : ComponentConfig {
  JobConfig() {
    kind = ComponentKind::job;
    type = kJobType;
    interval_ms = 1000;
    confirm = 1;  // a late, overrunning or failed judgment is an outage at once
  }
  JobSettings settings;

  // The same job: every setting alike, wherever in the files it is defined.
  bool same_job_as(const JobConfig& other) const {
    JobConfig moved = other;
    moved.source = source;
    return *this == moved;
  }
  bool operator==(const JobConfig&) const = default;
};

// A probe or a job of a configuration, by reference: what treats both alike
// reads the common part through `->`; what does not asks for probe() or job().
// Empty when default-made (a removed component's place).
class ComponentRef {
 public:
  ComponentRef() = default;
  // Implicit: a probe or a job is a component wherever one is wanted.
  ComponentRef(const ProbeConfig& probe) : probe_(&probe) {}
  ComponentRef(const JobConfig& job) : job_(&job) {}
  explicit operator bool() const { return probe_ || job_; }
  const ComponentConfig& operator*() const {
    if (probe_) return *probe_;
    return *job_;
  }
  const ComponentConfig* operator->() const { return &**this; }
  const ProbeConfig* probe() const { return probe_; }  // null unless a probe
  const JobConfig* job() const { return job_; }        // null unless a job
  // `visitor` called with the ProbeConfig or the JobConfig; both calls return the same type.
  template <typename Visitor>
  decltype(auto) visit(Visitor&& visitor) const {
    if (probe_) return std::forward<Visitor>(visitor)(*probe_);
    return std::forward<Visitor>(visitor)(*job_);
  }
  // The same probe or the same job (as same_probe_as, same_job_as).
  bool same_as(const ComponentRef& other) const {
    if (probe_ && other.probe_) return probe_->same_probe_as(*other.probe_);
    return job_ && other.job_ && job_->same_job_as(*other.job_);
  }

 private:
  const ProbeConfig* probe_ = nullptr;
  const JobConfig* job_ = nullptr;
};

// The status page's identity, from a `[page]` table (at most one in probes.d).
struct PageConfig {
  std::string name = "blip";
  std::string url;                    // where people open the page; empty: the feed's own address
  std::string time_zone = "Etc/UTC";  // the zone the page shows times in
  bool show_details = false;  // the public face also shows error classes (never server text)
  // Secret: `blip incident note` and `blip notice` send it to the private face (empty: refused).
  std::string operator_token;
  std::string source;  // "file:line", empty when defaulted
};

// Which probes and jobs a `[[alert]]` or `[[maintenance]]` table covers: those
// named in `probes`, and those carrying any of `tags`; both empty: all of them.
struct Selector {
  std::vector<std::string> probes;
  std::vector<std::string> tags;
  bool matches(const ComponentConfig& component) const {
    return matches(component.name, component.tags);
  }
  // The same, for what an AlertEvent carries (a probe's name and tags).
  bool matches(const std::string& name, const std::vector<std::string>& probe_tags) const {
    if (probes.empty() && tags.empty()) return true;
    if (std::find(probes.begin(), probes.end(), name) != probes.end()) return true;
    return std::any_of(tags.begin(), tags.end(), [&](const std::string& tag) {
      return std::find(probe_tags.begin(), probe_tags.end(), tag) != probe_tags.end();
    });
  }
  bool operator==(const Selector&) const = default;
};

// `flapping = { outages = 3, within = "1h" }`: this many outages of one probe
// within the window make one summary message instead of one each.
struct FlappingRule {
  int outages = 3;
  int64_t within_ms = 3'600'000;
  bool operator==(const FlappingRule&) const = default;
};

// An e-mail address as a `from` or `to` value gives it: "ops@example.org" or
// "Ops Team <ops@example.org>" (the display name may be quoted, and any UTF-8).
struct MailAddress {
  std::string display_name;  // empty when none
  std::string address;       // the addr-spec: printable ASCII, one "@", no spaces or specials
  bool operator==(const MailAddress&) const = default;
};
// Nullopt, with `problem` set, for text that is not one address (two, none, a
// line break, a space inside the address).
std::optional<MailAddress> parse_mail_address(std::string_view text, std::string* problem);

// `kind = "email"`'s keys (unused by the other kinds).
struct MailSettings {
  // smtp:// only: `starttls = "try"` (the default, as Mastodon's
  // SMTP_ENABLE_STARTTLS=auto) upgrades when the server offers STARTTLS and
  // goes on in the clear when it does not; "require" fails the send without
  // it; "off" never upgrades. smtps:// is TLS from the first byte.
  enum class StartTls { try_upgrade, require, off };
  MailAddress from;
  std::vector<MailAddress> to;  // at least one
  std::string username;         // SMTP AUTH, with `password`; empty: no AUTH
  std::string password;         // a secret: never log it
  StartTls starttls = StartTls::try_upgrade;
  std::string subject_prefix;  // put before each subject ("[blip] "), as written
  bool operator==(const MailSettings&) const = default;
};

struct AlertConfig {
  enum class Kind { webhook, slack, ntfy, alertmanager, email };
  std::string name;  // defaults to "<kind>-<n>"
  Kind kind = Kind::webhook;
  // incident: one message per incident (opened, grew, resolved); probe: one per outage.
  enum class Group { incident, probe };
  Group group = Group::incident;
  std::string url;  // may hold a secret (a Slack webhook path, a token): never log it whole
  std::vector<std::pair<std::string, std::string>> headers;  // values may be secrets
  MailSettings mail;                                         // kind = email only
  Selector selector;
  bool send_resolved = true;
  int64_t repeat_ms = 0;  // a reminder this often while still down; 0: none
  std::optional<FlappingRule> flapping;
  int64_t timeout_ms = 5'000;      // one send
  int64_t retry_for_ms = 600'000;  // retries with backoff stop after this
  std::string source;              // "file:line"
  bool operator==(const AlertConfig&) const = default;
};
std::string_view to_string(AlertConfig::Kind kind);
inline constexpr size_t kAlertKindCount = 5;

// `[[maintenance]]`: alerts for the selected probes are held inside each window;
// outages are still recorded (marked in_maintenance).
struct MaintenanceConfig {
  std::string name;
  std::string start;  // a cron expression, or one time (RFC 3339, or local "YYYY-MM-DD HH:MM")
  int64_t duration_ms = 0;
  std::string time_zone = "Etc/UTC";
  Selector selector;
  std::string source;
  bool operator==(const MaintenanceConfig&) const = default;
};

// `[[remote_write]]`: a Prometheus remote-write 1.0 endpoint every stored sample is shipped to.
struct RemoteWriteConfig {
  std::string url;  // http:// or https://; may hold a secret (user:password@): never log it whole
  std::vector<std::pair<std::string, std::string>> headers;  // values may be secrets
  std::string username;  // basic auth with `password` (from `password_file`)
  std::string password;
  int64_t timeout_ms = 10'000;  // one request
  std::string source;           // "file:line"
  bool operator==(const RemoteWriteConfig&) const = default;
};

// `[[heartbeat]]`: blip's own dead-man's switch, a GET to `url` every `every` while blip is well
// (a healthchecks.io check, another blip's /ping/<token>): what is outside notices its absence.
struct HeartbeatConfig {
  std::string
      url;  // http:// or https://; may hold a secret (a check's uuid, a token): never log it
  std::vector<std::pair<std::string, std::string>> headers;  // values may be secrets
  int64_t every_ms = 60'000;
  int64_t timeout_ms = 10'000;  // one beat
  std::string source;           // "file:line"
  bool operator==(const HeartbeatConfig&) const = default;
};

struct ConfigError {
  std::string file;
  int line = 0;  // 0 when the error concerns a whole file or directory
  int column = 0;
  std::string message;
  // "file:line:col: message", or "file: message" without a position.
  std::string to_string() const;
};

struct LoadedConfig {
  std::vector<ProbeConfig> probes;
  std::vector<JobConfig> jobs;
  std::vector<AlertConfig> alerts;
  std::vector<MaintenanceConfig> maintenance;
  std::vector<RemoteWriteConfig> remote_writes;
  std::vector<HeartbeatConfig> heartbeats;
  PageConfig page;
  std::vector<ConfigError> errors;
  // Valid but unwise (a short job token): `blip check` prints them and still passes.
  std::vector<ConfigError> warnings;
  bool ok() const { return errors.empty(); }
  // The probes and jobs as the directory defines them: file by file in name
  // order, each file's probes before its jobs (the feed's order of components).
  std::vector<ComponentRef> components() const;
};

inline constexpr int64_t kMinimumIntervalMs = 50;
inline constexpr int64_t kMaximumTimeoutMs = 3'600'000;
// Attempts of one probe in flight at once (timeout ÷ interval, rounded up): the
// default timeout at the minimum interval.
inline constexpr int64_t kMaxAttemptsInFlight = 40;

// Loads every *.toml in `directory` in name order. Collects every error it can
// find rather than stopping at the first, so `blip check` shows them all.
LoadedConfig load_config_directory(const std::string& directory);

// Loads one file's text as load_config_directory loads a file named
// `file_name` (relative `*_file` paths are read from its directory).
LoadedConfig load_config_text(std::string_view toml_text, const std::string& file_name);

// Expands ${NAME} and ${NAME:-fallback} (the fallback may hold ${OTHER}) from the
// environment; "$$" is a literal "$".
// Nullopt with `error` set for an unterminated "${" or an unset variable.
std::optional<std::string> expand_environment(std::string_view text, std::string* error);

// Query parameter names whose values are secrets (tokens travel there). A
// parameter is secret when its name, or a `_`/`-`/`.`-separated part of it,
// is one of these, ignoring case: `api_key`, `X-Amz-Signature`.
inline const std::vector<std::string> kSecretQueryParameters{
    "token",  "access_token", "key",       "apikey",     "password", "passwd",
    "secret", "sig",          "signature", "credential", "auth"};

// How a reloaded configuration differs from the running probes and jobs,
// matched by name; one whose settings changed is removed and added anew.
struct ComponentChanges {
  std::vector<size_t> removed;  // indexes into `running`
  // Per component of `next`: the running index it keeps, or none (added).
  std::vector<std::optional<size_t>> kept;
};
// `running` holds empty refs for components removed earlier.
ComponentChanges compare_components(const std::vector<ComponentRef>& running,
                                    const std::vector<ComponentRef>& next);

// A URL for logs, feed and reports: the user info becomes "***", and so does
// the value of every secret query parameter (kSecretQueryParameters plus
// `also_secret`, an http probe's `redact_query`); the rest is kept.
std::string redact_url(const std::string& url, const std::vector<std::string>& also_secret = {});
// "scheme://host[:port]" of a URL (the port as written, or the scheme's default with
// `default_port`), or "(unparsable url)": what logs show of a URL whose path or query may be the
// secret (a Slack webhook, an ntfy topic, a heartbeat's check id), with "/***" after it.
std::string url_origin(const std::string& url, bool default_port = false);
// A libpq conninfo string or URI shown without its password. Empty when unparsable.
std::string redact_postgres_dsn(const std::string& dsn);

}  // namespace blip

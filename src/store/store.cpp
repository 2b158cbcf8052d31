#include "blip/store/store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string_view>

#include "blip/core/clock.hpp"
#include "blip/core/logging.hpp"

namespace blip {
namespace {

// Each entry moves the schema one version up; never edit a released one.
constexpr std::array<const char*, Store::kSchemaVersion> kMigrations{R"sql(
  CREATE TABLE probes(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    target TEXT NOT NULL,
    interval_ms INTEGER NOT NULL,
    confirm INTEGER NOT NULL);
  CREATE TABLE details(id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
  CREATE TABLE sample_blocks(
    probe_id INTEGER NOT NULL REFERENCES probes(id),
    minute_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY(probe_id, minute_ms)) WITHOUT ROWID;
  CREATE TABLE outages(
    id INTEGER PRIMARY KEY,
    probe_id INTEGER NOT NULL REFERENCES probes(id),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    error TEXT NOT NULL,
    detail TEXT NOT NULL,
    down_samples INTEGER NOT NULL,
    end_reason TEXT);
  CREATE INDEX outages_by_start ON outages(start_ms);
  CREATE TABLE blind_windows(
    id INTEGER PRIMARY KEY,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    reason TEXT NOT NULL);
  CREATE INDEX blind_windows_by_start ON blind_windows(start_ms);
  CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
)sql", R"sql(
  ALTER TABLE outages ADD COLUMN kind TEXT NOT NULL DEFAULT 'outage';
  ALTER TABLE outages ADD COLUMN incident_id INTEGER REFERENCES incidents(id);
  CREATE INDEX outages_by_incident ON outages(incident_id);
  CREATE TABLE incidents(
    id INTEGER PRIMARY KEY,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER);
  CREATE INDEX incidents_by_start ON incidents(start_ms);
  CREATE TABLE rollups(
    probe_id INTEGER NOT NULL REFERENCES probes(id),
    minute_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    down INTEGER NOT NULL,
    degraded INTEGER NOT NULL,
    p50_us INTEGER NOT NULL,
    p95_us INTEGER NOT NULL,
    max_us INTEGER NOT NULL,
    PRIMARY KEY(probe_id, minute_ms)) WITHOUT ROWID;
)sql", R"sql(
  -- A WITHOUT ROWID table keeps only ~1 KB of a row in its page and spills
  -- the rest of each ~1.5 KB block to a mostly empty overflow page (about
  -- 20 bytes a sample on disk); a rowid table keeps whole blocks in its pages.
  CREATE TABLE sample_blocks_rowid(
    id INTEGER PRIMARY KEY,
    probe_id INTEGER NOT NULL REFERENCES probes(id),
    minute_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    data BLOB NOT NULL);
  INSERT INTO sample_blocks_rowid(probe_id, minute_ms, count, data)
    SELECT probe_id, minute_ms, count, data FROM sample_blocks ORDER BY minute_ms, probe_id;
  DROP TABLE sample_blocks;
  ALTER TABLE sample_blocks_rowid RENAME TO sample_blocks;
  CREATE UNIQUE INDEX sample_blocks_by_probe_minute ON sample_blocks(probe_id, minute_ms);
  CREATE INDEX sample_blocks_by_minute ON sample_blocks(minute_ms);
)sql", R"sql(
  -- Uptime counts a probe's first minute from its first sample, not from the
  -- minute's start (NULL in older rows: the minute's start).
  ALTER TABLE rollups ADD COLUMN first_ms INTEGER;
)sql", R"sql(
  -- A minute's block may be several rows (parts appended by each write) until
  -- the minute closes and they are merged; readers take them in id order.
  DROP INDEX sample_blocks_by_probe_minute;
  CREATE INDEX sample_blocks_by_probe_minute ON sample_blocks(probe_id, minute_ms, id);
)sql", R"sql(
  -- New details rows are templates (each number a \x1f) and a down sample carries its
  -- numbers in its block (header bit 4): a blip before this reads those blocks as corrupt.
  SELECT 1;
)sql", R"sql(
  -- Jobs (push monitors) are probes of type 'job'; each run they report is a row.
  CREATE TABLE job_runs(
    id INTEGER PRIMARY KEY,
    probe_id INTEGER NOT NULL REFERENCES probes(id),
    rid TEXT NOT NULL DEFAULT '',
    start_ms INTEGER,
    end_ms INTEGER,
    exit_status INTEGER,
    failed INTEGER NOT NULL DEFAULT 0,
    output TEXT NOT NULL DEFAULT '');
  CREATE INDEX job_runs_by_probe ON job_runs(probe_id, coalesce(start_ms, end_ms));
  ALTER TABLE outages ADD COLUMN in_maintenance INTEGER NOT NULL DEFAULT 0;
  -- What the report needs of a job's configuration to forecast its runs (never its token).
  CREATE TABLE job_settings(
    probe_id INTEGER PRIMARY KEY REFERENCES probes(id),
    schedule TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    period_ms INTEGER NOT NULL,
    grace_ms INTEGER NOT NULL,
    max_run_ms INTEGER NOT NULL);
)sql", R"sql(
  -- Every table has a bound (issue 17). A details row keeps when a block last used it,
  -- so rows that no kept block refers to can go; rows from before count as used now.
  ALTER TABLE details ADD COLUMN last_used_ms INTEGER NOT NULL DEFAULT 0;
  UPDATE details SET last_used_ms = CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER);
  CREATE INDEX details_by_last_use ON details(last_used_ms);
  -- Job output is cleared after --retain (the runs stay): the runs that still have some.
  CREATE INDEX job_runs_with_output ON job_runs(coalesce(end_ms, start_ms)) WHERE output != '';
)sql", R"sql(
  -- The fleet (issue 20): this database's vantage name, and how far each remote-write
  -- endpoint has acknowledged: per probe, by name (ids change when a file is begun anew),
  -- the send time of its last sample sent; probe '' is blip's blind windows (their start).
  CREATE TABLE labels(key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE ship_cursors(
    endpoint TEXT NOT NULL,
    probe TEXT NOT NULL,
    sent_ms INTEGER NOT NULL,
    PRIMARY KEY(endpoint, probe)) WITHOUT ROWID;
)sql", R"sql(
  -- An operator's words (issue 21): notes on incidents, and notices that are incidents of
  -- their own. Kept forever, like incidents; components as text, one name a line.
  CREATE TABLE incident_notes(
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES incidents(id),
    status TEXT NOT NULL,
    text TEXT NOT NULL,
    at_ms INTEGER NOT NULL);
  CREATE INDEX incident_notes_by_incident ON incident_notes(incident_id, at_ms);
  CREATE TABLE notices(
    id INTEGER PRIMARY KEY,
    text TEXT NOT NULL,
    components TEXT NOT NULL,
    until_ms INTEGER,
    at_ms INTEGER NOT NULL);
)sql", R"sql(
  -- What each [[alert]] told of its incidents (issue 21), while an incident has something
  -- left to tell: a restart continues them instead of opening them again. The last message
  -- decided, and whether its endpoint had settled it (pending = 1: send it again); the
  -- incident's outages as the alert knows them, the root first (position 0).
  CREATE TABLE alert_incidents(
    alert TEXT NOT NULL,
    incident_id INTEGER NOT NULL,
    last_message TEXT NOT NULL,
    pending INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY(alert, incident_id)) WITHOUT ROWID;
  CREATE TABLE alert_incident_members(
    alert TEXT NOT NULL,
    incident_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    probe TEXT NOT NULL,
    probe_type TEXT NOT NULL,
    error TEXT NOT NULL,
    detail TEXT NOT NULL,
    down_ms INTEGER NOT NULL,
    up_ms INTEGER NOT NULL,
    told INTEGER NOT NULL,
    PRIMARY KEY(alert, incident_id, position)) WITHOUT ROWID;
)sql", R"sql(
  -- Each probe-hour's rollups added up (issue 22), kept by the writer in the transaction that
  -- writes them: the feed and the report read an hour as one row instead of sixty. Only the
  -- rollups with samples count, as rollup_totals counts them; an hour without any has no row.
  -- From this schema on, sample blocks may be in layout 2 (each column coded on its own),
  -- which a blip before it reads as corrupt: the version bump keeps such a blip out.
  CREATE TABLE hour_totals(
    probe_id INTEGER NOT NULL REFERENCES probes(id),
    hour_ms INTEGER NOT NULL,
    minutes INTEGER NOT NULL,
    first_minute_ms INTEGER NOT NULL,
    last_minute_ms INTEGER NOT NULL,
    samples INTEGER NOT NULL,
    down INTEGER NOT NULL,
    degraded INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    PRIMARY KEY(probe_id, hour_ms)) WITHOUT ROWID;
  INSERT INTO hour_totals
    SELECT probe_id, minute_ms / 3600000 * 3600000, count(*), min(minute_ms), max(minute_ms),
           sum(count), sum(down), sum(degraded), min(coalesce(first_ms, minute_ms))
    FROM rollups WHERE count > 0 GROUP BY probe_id, minute_ms / 3600000;
)sql"};

constexpr int64_t kMinuteMs = 60'000;
constexpr int64_t kHourMs = 3'600'000;
constexpr int64_t kMaxDetails = 10'000;
constexpr std::string_view kDetailsFull =
    "(detail not kept: more than 10000 distinct details stored)";
// A details row's last use is written at most this often; pruning keeps this much margin.
constexpr int64_t kDetailTouchEveryMs = 3'600'000;
// Damaged blocks one probe's write may begin anew before its samples are given up.
constexpr int kMaxReplacedBlocks = 3;

// SQLite's word for a damaged file or page.
bool is_corruption(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

[[noreturn]] void throw_sqlite(int rc, const std::string& message) {
  if (is_corruption(rc)) throw StoreCorrupt(message);
  throw StoreError(message);
}

}  // namespace

// A prepared statement, reset on destruction.
class Store::Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (const int rc = sqlite3_prepare_v2(db, sql, -1, &statement_, nullptr); rc != SQLITE_OK) {
      throw_sqlite(rc, fmt::format("sqlite prepare failed: {}", sqlite3_errmsg(db)));
    }
  }
  ~Statement() { sqlite3_finalize(statement_); }
  // For a kept statement's next use.
  Statement& reset() {
    sqlite3_reset(statement_);
    sqlite3_clear_bindings(statement_);
    return *this;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, int64_t value) {
    sqlite3_bind_int64(statement_, index, value);
    return *this;
  }
  Statement& bind(int index, const std::string& value) {
    sqlite3_bind_text(statement_, index, value.data(), static_cast<int>(value.size()),
                      SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind_blob(int index, const std::string& value) {
    sqlite3_bind_blob(statement_, index, value.data(), static_cast<int>(value.size()),
                      SQLITE_STATIC);
    return *this;
  }
  // True while there is a row; throws on error.
  bool step() {
    int rc = sqlite3_step(statement_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw_sqlite(rc, fmt::format("sqlite: {}", sqlite3_errmsg(db_)));
  }
  int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }
  bool is_null(int column) const { return sqlite3_column_type(statement_, column) == SQLITE_NULL; }
  std::string text(int column) const { return std::string(view(column)); }
  // Valid until the next step or reset.
  std::string_view view(int column) const {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(statement_, column));
    return data ? std::string_view(data,
                                   static_cast<size_t>(sqlite3_column_bytes(statement_, column)))
                : std::string_view();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* statement_ = nullptr;
};

namespace {

// One writer per database: an exclusive lock on a file beside it, held while
// the Store lives. Returns the descriptor, or throws naming the holder.
int lock_for_writing(const std::string& path) {
  const std::string lock_path = path + ".lock";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw StoreError(fmt::format("cannot open database {}: {}", path, std::strerror(errno)));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[64] = {};
    const ssize_t got = pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    std::string who(holder, got > 0 ? static_cast<size_t>(got) : 0);
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    throw StoreError(fmt::format(
        "database {} is in use by another blip ({}); one blip writes a database at a time", path,
        who.empty() ? "its lock file " + lock_path + " is held" : who));
  }
  const std::string me = fmt::format("pid {}", getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, me.data(), me.size(), 0) < 0) {
    // The lock holds either way; only the message a second blip prints is poorer.
  }
  return fd;
}

}  // namespace

SqliteMemory sqlite_memory() {
  sqlite3_int64 page_cache = 0;
  sqlite3_int64 highest = 0;
  // Without a SQLITE_CONFIG_PAGECACHE buffer every page is an "overflow" allocation.
  sqlite3_status64(SQLITE_STATUS_PAGECACHE_OVERFLOW, &page_cache, &highest, 0);
  return {sqlite3_memory_used(), page_cache};
}

namespace {

// 20261125T140003Z: a file name's time, without the colons some file systems refuse.
std::string compact_utc(int64_t wall_ms) {
  const std::time_t seconds = static_cast<std::time_t>(wall_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}Z", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

bool file_exists(const std::string& path) {
  struct stat status {};
  return lstat(path.c_str(), &status) == 0;
}

// The last time SQLite wrote the database (its WAL takes the writes between checkpoints); 0 if
// unknown.
int64_t last_modified_ms(const std::string& path) {
  int64_t latest = 0;
  for (const std::string& file : {path, path + "-wal"}) {
    struct stat status {};
    if (stat(file.c_str(), &status) != 0) continue;
    latest = std::max<int64_t>(
        latest, int64_t{status.st_mtim.tv_sec} * 1000 + status.st_mtim.tv_nsec / 1'000'000);
  }
  return latest;
}

}  // namespace

Store::Store(const std::string& path, Mode mode, Damaged damaged) : path_(path) {
  // The lock is taken first and held throughout: a database another blip writes is never checked or
  // moved.
  if (mode == Mode::read_write) lock_fd_ = lock_for_writing(path);
  const bool set_aside = mode == Mode::read_write && damaged == Damaged::set_aside;
  try {
    try {
      open_connection(mode, set_aside);
    } catch (const StoreCorrupt& error) {
      if (!set_aside) throw;
      close_connection();
      std::string reason = error.what();
      if (reason.rfind("sqlite: ", 0) == 0) reason.erase(0, 8);
      set_aside_ = move_aside(reason);
      open_connection(mode, false);
      // What the damaged file saw is not in this one: blind from its last write until now.
      add_blind_window({set_aside_->since_ms, set_aside_->at_ms, "store_damaged"});
    }
  } catch (const StoreError& error) {
    close_connection();
    if (lock_fd_ >= 0) ::close(lock_fd_);
    std::string message = error.what();
    if (message.find(path) == std::string::npos)
      message = fmt::format("database {}: {}", path, message);
    throw StoreError(message);
  }
}

void Store::open_connection(Mode mode, bool check_damage) {
  int flags =
      mode == Mode::read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  if (sqlite3_open_v2(path_.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    close_connection();
    throw StoreError(fmt::format("cannot open database {}: {}", path_, message));
  }
  sqlite3_busy_timeout(db_, 5000);
  // Until the file is known to be sound, closing must neither checkpoint nor delete its
  // WAL: a damaged database is refused, or moved aside, as it was found.
  if (mode == Mode::read_write)
    sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  // A read-only root file system (the container) has no writable /tmp for SQLite's temporary files.
  exec("PRAGMA temp_store=MEMORY");
  exec(fmt::format("PRAGMA cache_size=-{}", kPageCacheKiB).c_str());
  if (mode == Mode::read_write) {
    if (check_damage) {
      {
        // A newer blip's database is refused before it is checked: it is never moved.
        Statement version(db_, "PRAGMA user_version");
        version.step();
        if (const int64_t found = version.integer(0); found > kSchemaVersion) {
          throw StoreError(
              fmt::format("database {} was written by a newer blip (schema {}, this blip knows {})",
                          path_, found, kSchemaVersion));
        }
      }
      const int64_t began_us = mono_now_us();
      std::string problems;
      try {
        Statement check(db_, "PRAGMA quick_check(3)");
        while (check.step()) {
          if (const std::string line = check.text(0); line != "ok")
            problems += (problems.empty() ? "" : "; ") + line;
        }
      } catch (const StoreCorrupt& error) {
        problems = error.what();  // SQLite gave up on a page the check could not even walk
        if (problems.rfind("sqlite: ", 0) == 0) problems.erase(0, 8);
      }
      const int64_t took_us = mono_now_us() - began_us;
      log_at(took_us > 1'000'000 ? spdlog::level::info : spdlog::level::debug,
             "store: quick_check path={} seconds={:.3f}", path_,
             static_cast<double>(took_us) / 1e6);
      if (!problems.empty())
        throw StoreCorrupt(fmt::format("quick_check found damage: {}", problems.substr(0, 300)));
    }
    exec("PRAGMA journal_mode=WAL");
    // NORMAL in WAL mode survives a killed process; only an OS crash may lose the last commits.
    exec("PRAGMA synchronous=NORMAL");
    exec("PRAGMA foreign_keys=ON");
    migrate();
    sqlite3_db_config(db_, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
  } else {
    Statement version(db_, "PRAGMA user_version");
    version.step();
    int64_t found = version.integer(0);
    if (found > kSchemaVersion) {
      throw StoreError(
          fmt::format("database {} was written by a newer blip (schema {}, this blip knows {})",
                      path_, found, kSchemaVersion));
    }
    if (found < 1) throw StoreError(fmt::format("{} is not a blip database (no schema)", path_));
    if (found < kSchemaVersion) {
      throw StoreError(
          fmt::format("database {} has schema {}, this blip reads {}: `blip run` upgrades it",
                      path_, found, kSchemaVersion));
    }
  }
}

void Store::close_connection() noexcept {
  prepared_.clear();  // finalized before the connection closes
  sqlite3_close(db_);
  db_ = nullptr;
}

StoreSetAside Store::move_aside(const std::string& reason) {
  StoreSetAside aside;
  aside.reason = reason;
  aside.at_ms = wall_now_ms();
  const int64_t modified_ms = last_modified_ms(path_);
  aside.since_ms = modified_ms > 0 ? std::min(modified_ms, aside.at_ms) : aside.at_ms;
  const std::string base = fmt::format("{}.damaged-{}", path_, compact_utc(aside.at_ms));
  aside.moved_to = base;
  for (int n = 1; file_exists(aside.moved_to) || file_exists(aside.moved_to + "-wal"); ++n) {
    aside.moved_to = fmt::format("{}-{}", base, n);
  }
  // The WAL and shared memory keep their names beside it (`sqlite3 FILE .recover` reads them
  // together); a WAL left behind would be replayed into the new database, so each must move.
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    const std::string from = path_ + suffix;
    if (*suffix != '\0' && !file_exists(from)) continue;
    if (std::rename(from.c_str(), (aside.moved_to + suffix).c_str()) != 0) {
      throw StoreError(
          fmt::format("database {} is damaged ({}) and could not be moved aside to {}: {}", path_,
                      reason, aside.moved_to + suffix, std::strerror(errno)));
    }
  }
  // The time since its last write is recorded as a store_damaged blind window; a new database is
  // started.
  log_error("store: damaged database set aside path={} reason={} moved_to={} last_write={}", path_,
            reason, aside.moved_to, format_iso8601_ms(aside.since_ms));
  return aside;
}

Store::~Store() {
  try {
    bool pending = false;
    for (auto& [id, buffer] : buffers_) pending = pending || !buffer.pending.empty();
    if (pending) log_warn("store: closing with unflushed samples path={}", path_);
  } catch (...) {
  }
  close_connection();
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the lock
}

Store::Statement& Store::prepared(const char* sql) const {
  auto& statement = prepared_[sql];
  if (!statement) statement = std::make_unique<Statement>(db_, sql);
  return statement->reset();
}

// Resets a kept statement when its read ends, done or not: a statement left mid-result would
// hold its read transaction (and its snapshot) open until its next use.
class Store::ResetAfterRead {
 public:
  explicit ResetAfterRead(Statement& statement) : statement_(statement) {}
  ~ResetAfterRead() { statement_.reset(); }
  ResetAfterRead(const ResetAfterRead&) = delete;
  ResetAfterRead& operator=(const ResetAfterRead&) = delete;

 private:
  Statement& statement_;
};

Store::ReadTransaction::ReadTransaction(const Store& store) : store_(store) {
  store_.exec("BEGIN");
}

Store::ReadTransaction::~ReadTransaction() {
  // A read-only transaction: ending it cannot lose anything.
  sqlite3_exec(store_.db_, "COMMIT", nullptr, nullptr, nullptr);
}

void Store::exec(const char* sql) const {
  char* error = nullptr;
  if (const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &error); rc != SQLITE_OK) {
    std::string message = error ? error : sqlite3_errmsg(db_);
    sqlite3_free(error);
    throw_sqlite(rc, fmt::format("sqlite: {}", message));
  }
}

// SQLite may already have rolled back by itself (disk full, I/O error).
void Store::rollback() noexcept {
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void Store::migrate() {
  // The version is read inside the write transaction, so two daemons starting
  // on one database at once migrate it once: the second waits, then finds it done.
  exec("BEGIN IMMEDIATE");
  try {
    int64_t found = 0;
    {
      // Finalized before migrating: an open statement would keep DROP TABLE from running.
      Statement version(db_, "PRAGMA user_version");
      version.step();
      found = version.integer(0);
    }
    if (found > kSchemaVersion) {
      throw StoreError(
          fmt::format("database {} was written by a newer blip (schema {}, this blip knows {})",
                      path_, found, kSchemaVersion));
    }
    for (int64_t next = found; next < kSchemaVersion; ++next) {
      exec(kMigrations[static_cast<size_t>(next)]);
      exec(fmt::format("PRAGMA user_version={}", next + 1).c_str());
    }
    exec("COMMIT");
  } catch (...) {
    rollback();
    throw;
  }
}

int64_t Store::register_component(const ComponentConfig& component) {
  Statement upsert(db_,
                   "INSERT INTO probes(name, type, target, interval_ms, confirm) VALUES(?,?,?,?,?) "
                   "ON CONFLICT(name) DO UPDATE SET type=excluded.type, target=excluded.target, "
                   "interval_ms=excluded.interval_ms, confirm=excluded.confirm");
  upsert.bind(1, component.name).bind(2, component.type).bind(3, component.target_display);
  upsert.bind(4, component.interval_ms).bind(5, static_cast<int64_t>(component.confirm)).step();
  Statement select(db_, "SELECT id FROM probes WHERE name=?");
  select.bind(1, component.name).step();
  return select.integer(0);
}

int64_t Store::register_probe(const ProbeConfig& probe) { return register_component(probe); }

int64_t Store::register_probe(const JobConfig& job) {
  const int64_t id = register_component(job);
  Statement settings(
      db_,
      "INSERT OR REPLACE INTO job_settings(probe_id, schedule, time_zone, period_ms, grace_ms, "
      "max_run_ms) VALUES(?,?,?,?,?,?)");
  settings.bind(1, id)
      .bind(2, job.settings.schedule)
      .bind(3, job.settings.time_zone)
      .bind(4, job.settings.period_ms);
  settings.bind(5, job.settings.grace_ms).bind(6, job.settings.max_run_ms).step();
  return id;
}

std::vector<std::pair<std::string, JobSettings>> Store::jobs() const {
  Statement select(db_,
                   "SELECT p.name, j.schedule, j.time_zone, j.period_ms, j.grace_ms, j.max_run_ms "
                   "FROM job_settings j "
                   "JOIN probes p ON p.id = j.probe_id WHERE p.type = 'job' ORDER BY p.name");
  std::vector<std::pair<std::string, JobSettings>> jobs;
  while (select.step()) {
    JobSettings job;
    job.schedule = select.text(1);
    job.time_zone = select.text(2);
    job.period_ms = select.integer(3);
    job.grace_ms = select.integer(4);
    job.max_run_ms = select.integer(5);
    jobs.emplace_back(select.text(0), std::move(job));
  }
  return jobs;
}

void Store::add_sample(int64_t probe_id, const Sample& sample) {
  buffers_[probe_id].pending.push_back(sample);
}

void Store::forget_details() noexcept {
  detail_ids_.clear();
  detail_count_ = -1;
}

int64_t Store::detail_id(const std::string& text, int64_t used_ms) {
  if (text.empty()) return 0;
  if (auto found = detail_ids_.find(text); found != detail_ids_.end()) {
    // Pruning keeps a row until no kept block can use it: its last use is written now and then.
    if (used_ms > found->second.touched_ms + kDetailTouchEveryMs) {
      prepared("UPDATE details SET last_used_ms=max(last_used_ms, ?) WHERE id=?")
          .bind(1, used_ms)
          .bind(2, found->second.id)
          .step();
      found->second.touched_ms = used_ms;
    }
    return found->second.id;
  }
  if (detail_count_ < 0) {
    Statement count(db_, "SELECT count(*) FROM details");
    count.step();
    detail_count_ = count.integer(0);
  }
  // Templates are few; text that varies in more than its numbers (an id in an error
  // message) could still grow the table without end: past the bound one row stands in.
  const std::string& stored = detail_count_ < kMaxDetails ? text : std::string(kDetailsFull);
  Statement insert(
      db_, "INSERT INTO details(text, last_used_ms) VALUES(?, ?) ON CONFLICT(text) DO NOTHING");
  insert.bind(1, stored).bind(2, used_ms).step();
  const int inserted = sqlite3_changes(db_);
  detail_count_ += inserted;
  if (inserted == 0) {
    Statement touch(db_, "UPDATE details SET last_used_ms=max(last_used_ms, ?) WHERE text=?");
    touch.bind(1, used_ms).bind(2, stored).step();
  }
  Statement select(db_, "SELECT id FROM details WHERE text=?");
  select.bind(1, stored).step();
  int64_t id = select.integer(0);
  if (detail_ids_.size() > 10'000) detail_ids_.clear();  // bound the cache too
  detail_ids_.emplace(text, CachedDetail{id, used_ms});
  return id;
}

void Store::begin_block(int64_t probe_id, int64_t minute_ms, ProbeBuffer& buffer) {
  buffer.minute = RollupAccumulator{};
  buffer.part_rows.clear();
  buffer.block.emplace(minute_ms);
  // Its stored rows were damaged and are removed: the minute goes on from here.
  if (std::find(buffer.replace_minutes.begin(), buffer.replace_minutes.end(), minute_ms) !=
      buffer.replace_minutes.end()) {
    return;
  }
  // A previous run (or a write of this run that failed after it) stored part
  // of this minute: continue its block rather than overwrite it. The ids come from
  // the index alone, so a row known to be damaged is never read.
  std::vector<int64_t> rows;
  Statement& ids =
      prepared("SELECT id FROM sample_blocks WHERE probe_id=? AND minute_ms=? ORDER BY id");
  ids.bind(1, probe_id).bind(2, minute_ms);
  while (ids.step()) {
    if (!undeletable_rows_.contains(ids.integer(0))) rows.push_back(ids.integer(0));
  }
  for (int64_t row : rows) {
    Statement& existing = prepared("SELECT data FROM sample_blocks WHERE id=?");
    existing.bind(1, row);
    if (!existing.step()) continue;
    std::vector<StoredSample> decoded;
    try {
      decoded = decode_sample_block(minute_ms, existing.text(0));
    } catch (const std::runtime_error& error) {
      throw StoreCorrupt(
          fmt::format("sample block of minute {} is corrupt: {}", minute_ms, error.what()));
    }
    for (const StoredSample& stored : decoded) {
      buffer.block->append(stored.sample, stored.detail_id, stored.detail_numbers);
      buffer.minute.add(stored.sample);
    }
    buffer.part_rows.push_back(row);
  }
}

void Store::write_rollup(int64_t probe_id, const ProbeBuffer& buffer) {
  // The minute's rollup is rewritten with each write of its samples, so the two always agree.
  const Rollup rollup = buffer.minute.rollup(buffer.block->base_ms());
  Statement& rollup_upsert = prepared(
      "INSERT OR REPLACE INTO rollups(probe_id, minute_ms, count, down, degraded, p50_us, p95_us, "
      "max_us, first_ms) "
      "VALUES(?,?,?,?,?,?,?,?,?)");
  rollup_upsert.bind(1, probe_id)
      .bind(2, rollup.minute_ms)
      .bind(3, rollup.count)
      .bind(4, rollup.down);
  rollup_upsert.bind(5, rollup.degraded)
      .bind(6, rollup.p50_us)
      .bind(7, rollup.p95_us)
      .bind(8, rollup.max_us);
  rollup_upsert.bind(9, rollup.first_ms).step();
  recount_hour(probe_id, rollup.minute_ms - rollup.minute_ms % kHourMs);
}

void Store::recount_hour(int64_t probe_id, int64_t hour_ms) {
  // Added up again from its rollups (at most 60 rows, adjacent in the rollups' key) rather than
  // changed by the difference: a minute begun anew after damage, or a write rolled back,
  // cannot leave the hour counting what its rollups no longer hold.
  prepared(
      "INSERT OR REPLACE INTO hour_totals(probe_id, hour_ms, minutes, first_minute_ms, "
      "last_minute_ms, samples, down, degraded, first_ms) "
      "SELECT ?1, ?2, count(*), min(minute_ms), max(minute_ms), sum(count), sum(down), "
      "sum(degraded), min(coalesce(first_ms, minute_ms)) FROM rollups "
      "WHERE probe_id = ?1 AND minute_ms >= ?2 AND minute_ms < ?2 + 3600000 AND count > 0 "
      "GROUP BY probe_id")  // no rollups, no row (HAVING without GROUP BY needs SQLite 3.39)
      .bind(1, probe_id)
      .bind(2, hour_ms)
      .step();
  if (sqlite3_changes(db_) == 0) {
    prepared("DELETE FROM hour_totals WHERE probe_id = ? AND hour_ms = ?")
        .bind(1, probe_id)
        .bind(2, hour_ms)
        .step();
  }
}

void Store::insert_block(int64_t probe_id, const SampleBlockEncoder& block) {
  prepared("INSERT INTO sample_blocks(probe_id, minute_ms, count, data) VALUES(?,?,?,?)")
      .bind(1, probe_id)
      .bind(2, block.base_ms())
      .bind(3, block.count())
      .bind_blob(4, block.bytes())
      .step();
}

void Store::close_minute(int64_t probe_id, ProbeBuffer& buffer) {
  const SampleBlockEncoder& block = *buffer.block;
  insert_block(probe_id, block);
  // The parts are the rows from the first part to the merged one just inserted (a damaged
  // row that could not be removed is older than them, and left alone).
  if (!buffer.part_rows.empty()) {
    prepared("DELETE FROM sample_blocks WHERE probe_id=? AND minute_ms=? AND id>=? AND id<?")
        .bind(1, probe_id)
        .bind(2, block.base_ms())
        .bind(3, *std::min_element(buffer.part_rows.begin(), buffer.part_rows.end()))
        .bind(4, sqlite3_last_insert_rowid(db_))
        .step();
  }
  buffer.part_rows.clear();
  write_rollup(probe_id, buffer);
}

namespace {

// Each probe's samples, in the order the probes first appear and each probe's in its own order.
std::vector<std::pair<int64_t, std::vector<const Sample*>>> by_probe(
    const std::vector<std::pair<int64_t, Sample>>& samples) {
  std::vector<std::pair<int64_t, std::vector<const Sample*>>> groups;
  std::unordered_map<int64_t, size_t> index;
  for (const auto& [probe_id, sample] : samples) {
    auto [at, added] = index.try_emplace(probe_id, groups.size());
    if (added) groups.emplace_back(probe_id, std::vector<const Sample*>{});
    groups[at->second].second.push_back(&sample);
  }
  return groups;
}

}  // namespace

void Store::write_probe_samples(int64_t probe_id, const std::vector<const Sample*>& samples,
                                int64_t& working_minute_ms) {
  // This write's new samples of the probe's open minute, appended as one part row.
  ProbeBuffer& buffer = buffers_[probe_id];
  std::optional<SampleBlockEncoder> part;
  for (const Sample* sample : samples) {
    const int64_t minute_ms = sample->sent_ms - sample->sent_ms % kMinuteMs;
    // A sample stamped earlier than the open block (the wall clock stepped
    // back) stays in it: its own time is exact within the block.
    if (!buffer.block || minute_ms > buffer.block->base_ms()) {
      if (buffer.block) {
        working_minute_ms = buffer.block->base_ms();
        part.reset();  // the merged row holds them
        close_minute(probe_id, buffer);
      }
      working_minute_ms = minute_ms;
      begin_block(probe_id, minute_ms, buffer);
    }
    working_minute_ms = buffer.block->base_ms();
    // The details table holds each detail's template once; its numbers stay with the sample.
    std::string numbers;
    const int64_t detail =
        sample->status == Status::down
            ? detail_id(detail_template(sample->detail, numbers), buffer.block->base_ms())
            : 0;
    buffer.block->append(*sample, detail, numbers);
    buffer.minute.add(*sample);
    if (!part) part.emplace(buffer.block->base_ms());
    part->append(*sample, detail, numbers);
  }
  if (part) {
    insert_block(probe_id, *part);
    buffer.part_rows.push_back(sqlite3_last_insert_rowid(db_));
    write_rollup(probe_id, buffer);
  }
}

namespace {

// Damage met in one probe's samples, while a write looks for it.
class DamagedSamples : public StoreCorrupt {
 public:
  DamagedSamples(const std::string& what, int64_t probe, int64_t minute)
      : StoreCorrupt(what), probe_id(probe), minute_ms(minute) {}
  int64_t probe_id;
  int64_t minute_ms;  // -1: not known
};

}  // namespace

bool Store::learn_from_damage(int64_t probe_id, int64_t minute_ms, const std::string& error,
                              std::set<int64_t>& skipped) {
  ProbeBuffer& buffer = buffers_[probe_id];
  // Each damaged block is counted and logged once, however often a write meets it again.
  if (damage_reported_.size() > 10'000) damage_reported_.clear();
  const bool replaced = std::find(buffer.replace_minutes.begin(), buffer.replace_minutes.end(),
                                  minute_ms) != buffer.replace_minutes.end();
  if (minute_ms >= 0 && !replaced &&
      buffer.replace_minutes.size() < static_cast<size_t>(kMaxReplacedBlocks)) {
    // Each row on its own, outside a transaction: a row SQLite cannot even delete stays, and is
    // never read again.
    std::vector<int64_t> rows;
    try {
      {
        Statement ids(db_, "SELECT id FROM sample_blocks WHERE probe_id=? AND minute_ms=?");
        ids.bind(1, probe_id).bind(2, minute_ms);
        while (ids.step()) rows.push_back(ids.integer(0));
      }
      for (int64_t row : rows) {
        try {
          Statement remove(db_, "DELETE FROM sample_blocks WHERE id=?");
          remove.bind(1, row).step();
        } catch (const StoreCorrupt& undeletable) {
          undeletable_rows_.insert(row);
          // It stays in the file, never read again.
          log_warn("store: damaged block kept unread probe_id={} minute={} row={} err={}", probe_id,
                   format_iso8601_ms(minute_ms), row, undeletable.what());
        }
      }
    } catch (const StoreCorrupt&) {
      return learn_from_damage(probe_id, -1, error, skipped);  // not even its index can be read
    }
    buffer.replace_minutes.push_back(minute_ms);
    if (damage_reported_.emplace(probe_id, minute_ms).second) {
      ++damaged_blocks_;
      // What it held of that minute is lost; the rest of the write goes on.
      log_warn("store: damaged block replaced probe_id={} minute={} err={}", probe_id,
               format_iso8601_ms(minute_ms), error);
    }
    return true;
  }
  if (!skipped.insert(probe_id).second) return false;
  if (damage_reported_.emplace(probe_id, -2 - std::max<int64_t>(-1, minute_ms)).second) {
    // The rest of the write goes on, and a restart sets the file aside.
    log_error("store: samples dropped where the database is damaged probe_id={} err={}", probe_id,
              error);
  }
  return true;
}

void RunningPercentile::add(int64_t value) {
  if (lower_.empty() || value <= lower_.top()) {
    lower_.push(value);
  } else {
    upper_.push(value);
  }
  const size_t count = lower_.size() + upper_.size();
  const size_t position =
      std::min(count - 1, static_cast<size_t>(fraction_ * static_cast<double>(count)));
  while (lower_.size() > position + 1) {
    upper_.push(lower_.top());
    lower_.pop();
  }
  while (lower_.size() < position + 1) {
    lower_.push(upper_.top());
    upper_.pop();
  }
}

void RollupAccumulator::add(const Sample& sample) {
  ++count_;
  first_ms_ = std::min(first_ms_, sample.sent_ms);
  if (sample.status == Status::blind) return;  // no latency to speak of
  if (sample.status == Status::down) {
    ++down_;
    return;
  }
  if (sample.status == Status::degraded) ++degraded_;
  p50_.add(sample.latency_us);
  p95_.add(sample.latency_us);
  max_us_ = std::max(max_us_, sample.latency_us);
  any_latency_ = true;
}

Rollup RollupAccumulator::rollup(int64_t minute_ms) const {
  Rollup rollup{minute_ms, count_, down_, degraded_, 0, 0, 0, count_ > 0 ? first_ms_ : minute_ms};
  if (!any_latency_) return rollup;
  rollup.p50_us = p50_.value();
  rollup.p95_us = p95_.value();
  rollup.max_us = max_us_;
  return rollup;
}

void Store::write(const WriteBatch& batch) {
  std::set<int64_t> skipped;  // probes whose samples this write cannot store
  for (int pass = 0;; ++pass) {
    try {
      write_once(batch, pass > 0, skipped);
      break;
    } catch (const DamagedSamples& damage) {
      // Learnt outside the transaction (SQLite bars writes in one that met corruption), then again.
      if (pass > 3 * kMaxReplacedBlocks ||
          !learn_from_damage(damage.probe_id, damage.minute_ms, damage.what(), skipped)) {
        throw StoreCorrupt(damage.what());
      }
    } catch (const StoreCorrupt& error) {
      if (pass > 0) throw;
      // Perhaps one probe's block: again, finding whose, so that it costs only that block.
      log_debug("store: write met damage, looking for it err={}", error.what());
    }
  }
  for (const auto& [probe_id, samples] : batch.samples) {
    if (skipped.contains(probe_id)) ++damaged_dropped_samples_;
  }
}

void Store::write_once(const WriteBatch& batch, bool find_damage,
                       const std::set<int64_t>& skipped) {
  auto undo = [&] {
    // Blocks may hold samples that were rolled back: rebuild them from the database next time.
    for (auto& [probe_id, buffer] : buffers_) buffer.block.reset();
    forget_details();
    rollback();
  };
  exec("BEGIN IMMEDIATE");
  try {
    for (const auto& [probe_id, samples] : by_probe(batch.samples)) {
      if (skipped.contains(probe_id)) continue;
      int64_t working_minute_ms = -1;
      try {
        write_probe_samples(probe_id, samples, working_minute_ms);
      } catch (const StoreCorrupt& error) {
        if (!find_damage) throw;
        throw DamagedSamples(error.what(), probe_id, working_minute_ms);
      }
    }
    for (const IncidentRow& incident : batch.incidents) upsert_incident(incident);
    for (const OutageRow& outage : batch.outages) upsert_outage(outage);
    for (const BlindWindow& window : batch.blind_windows) add_blind_window(window);
    for (const JobRunRow& run : batch.job_runs) upsert_job_run(run);
    for (const ShipCursor& cursor : batch.ship_cursors) upsert_ship_cursor(cursor);
    for (const IncidentNoteRow& note : batch.notes) insert_note(note);
    for (const NoticeRow& notice : batch.notices) insert_notice(notice);
    for (const AlertIncidentRow& row : batch.alert_incidents) save_alert_incident(row);
    Statement alive(db_,
                    "INSERT INTO meta(key, value) VALUES('last_alive_ms', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value=excluded.value");
    alive.bind(1, batch.alive_ms).step();
    exec("COMMIT");
  } catch (const StoreCorrupt&) {
    undo();
    throw;
  } catch (const std::exception& error) {
    undo();
    throw StoreError(error.what());
  }
  // The damaged minutes were begun anew and that is stored: from now on their rows are sound.
  for (auto& [probe_id, buffer] : buffers_) buffer.replace_minutes.clear();
}

void Store::flush(int64_t now_ms) {
  WriteBatch batch;
  batch.alive_ms = now_ms;
  for (const auto& [probe_id, buffer] : buffers_) {
    for (const Sample& sample : buffer.pending) batch.samples.emplace_back(probe_id, sample);
  }
  write(batch);
  for (auto& [probe_id, buffer] : buffers_) buffer.pending.clear();
}

void Store::upsert_incident(const IncidentRow& row) {
  Statement upsert(
      db_,
      "INSERT INTO incidents(id, start_ms, end_ms) VALUES(?1, ?2, ?3) "
      "ON CONFLICT(id) DO UPDATE SET start_ms=excluded.start_ms, end_ms=excluded.end_ms");
  upsert.bind(1, row.id).bind(2, row.start_ms);
  if (row.end_ms) upsert.bind(3, *row.end_ms);
  upsert.step();
}

void Store::upsert_outage(const OutageRow& row) {
  Statement upsert(
      db_,
      "INSERT INTO outages(id, probe_id, start_ms, end_ms, error, detail, down_samples, "
      "end_reason, kind, "
      "incident_id, in_maintenance) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) "
      "ON CONFLICT(id) DO UPDATE SET end_ms=excluded.end_ms, down_samples=excluded.down_samples, "
      "end_reason=excluded.end_reason, incident_id=excluded.incident_id");
  upsert.bind(1, row.id).bind(2, row.probe_id).bind(3, row.start_ms);
  if (row.end_ms) upsert.bind(4, *row.end_ms);
  upsert.bind(5, std::string(to_string(row.error))).bind(6, row.detail).bind(7, row.down_samples);
  if (!row.end_reason.empty()) upsert.bind(8, row.end_reason);
  upsert.bind(9, std::string(to_string(row.kind)));
  if (row.incident_id) upsert.bind(10, *row.incident_id);
  upsert.bind(11, static_cast<int64_t>(row.in_maintenance));
  upsert.step();
}

void Store::upsert_job_run(const JobRunRow& row) {
  Statement upsert(
      db_,
      "INSERT INTO job_runs(id, probe_id, rid, start_ms, end_ms, exit_status, failed, output) "
      "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT(id) DO UPDATE SET "
      "start_ms=excluded.start_ms, "
      "end_ms=excluded.end_ms, exit_status=excluded.exit_status, failed=excluded.failed, "
      "output=excluded.output");
  upsert.bind(1, row.id).bind(2, row.probe_id).bind(3, row.rid);
  if (row.start_ms) upsert.bind(4, *row.start_ms);
  if (row.end_ms) upsert.bind(5, *row.end_ms);
  if (row.exit_status) upsert.bind(6, static_cast<int64_t>(*row.exit_status));
  upsert.bind(7, static_cast<int64_t>(row.failed)).bind(8, row.output);
  upsert.step();
}

void Store::write_job_run(const JobRunRow& row) { upsert_job_run(row); }

int64_t Store::max_job_run_id() const {
  Statement select(db_, "SELECT coalesce(max(id), 0) FROM job_runs");
  select.step();
  return select.integer(0);
}

std::vector<JobRunRecord> Store::job_runs(const std::string& job, int64_t from_ms, int64_t to_ms,
                                          int64_t limit) const {
  Statement select(db_,
                   "SELECT r.id, r.probe_id, r.rid, r.start_ms, r.end_ms, r.exit_status, r.failed, "
                   "r.output, p.name "
                   "FROM job_runs r JOIN probes p ON p.id = r.probe_id WHERE p.name = ?1 AND "
                   "coalesce(r.start_ms, r.end_ms) >= ?2 AND coalesce(r.start_ms, r.end_ms) < ?3 "
                   "ORDER BY coalesce(r.start_ms, r.end_ms) DESC, r.id DESC LIMIT ?4");
  select.bind(1, job).bind(2, from_ms).bind(3, to_ms).bind(4, limit);
  std::vector<JobRunRecord> runs;
  while (select.step()) {
    JobRunRecord run;
    run.id = select.integer(0);
    run.probe_id = select.integer(1);
    run.rid = select.text(2);
    if (!select.is_null(3)) run.start_ms = select.integer(3);
    if (!select.is_null(4)) run.end_ms = select.integer(4);
    if (!select.is_null(5)) run.exit_status = static_cast<int>(select.integer(5));
    run.failed = select.integer(6) != 0;
    run.output = select.text(7);
    run.job = select.text(8);
    runs.push_back(std::move(run));
  }
  return runs;
}

void Store::insert_note(const IncidentNoteRow& row) {
  Statement insert(db_,
                   "INSERT INTO incident_notes(incident_id, status, text, at_ms) "
                   "VALUES(?1, ?2, ?3, ?4)");
  insert.bind(1, row.incident_id).bind(2, row.status).bind(3, row.text).bind(4, row.at_ms).step();
}

void Store::insert_notice(const NoticeRow& row) {
  std::string components;
  for (const std::string& name : row.components) components += name + "\n";
  Statement insert(db_,
                   "INSERT INTO notices(text, components, until_ms, at_ms) VALUES(?1, ?2, ?3, ?4)");
  insert.bind(1, row.text).bind(2, components).bind(4, row.at_ms);
  if (row.until_ms) insert.bind(3, *row.until_ms);
  insert.step();
}

void Store::save_alert_incident(const AlertIncidentRow& row) {
  Statement remove_members(
      db_, "DELETE FROM alert_incident_members WHERE alert = ?1 AND incident_id = ?2");
  remove_members.bind(1, row.alert).bind(2, row.incident_id).step();
  if (row.done) {
    Statement remove(db_, "DELETE FROM alert_incidents WHERE alert = ?1 AND incident_id = ?2");
    remove.bind(1, row.alert).bind(2, row.incident_id).step();
    return;
  }
  Statement upsert(db_,
                   "INSERT INTO alert_incidents(alert, incident_id, last_message, pending, "
                   "updated_ms) VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(alert, incident_id) DO "
                   "UPDATE SET last_message=excluded.last_message, pending=excluded.pending, "
                   "updated_ms=excluded.updated_ms");
  upsert.bind(1, row.alert).bind(2, row.incident_id).bind(3, row.last_message);
  upsert.bind(4, static_cast<int64_t>(row.pending)).bind(5, row.updated_ms).step();
  int64_t position = 0;
  for (const AlertIncidentMemberRow& member : row.members) {
    Statement insert(db_,
                     "INSERT INTO alert_incident_members(alert, incident_id, position, probe, "
                     "probe_type, error, detail, down_ms, up_ms, told) "
                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
    insert.bind(1, row.alert).bind(2, row.incident_id).bind(3, position++).bind(4, member.probe);
    insert.bind(5, member.probe_type).bind(6, std::string(to_string(member.error)));
    insert.bind(7, member.detail).bind(8, member.down_ms).bind(9, member.up_ms);
    insert.bind(10, static_cast<int64_t>(member.told)).step();
  }
}

std::vector<AlertIncidentRow> Store::alert_incidents() const {
  std::vector<AlertIncidentRow> rows;
  Statement select(db_,
                   "SELECT alert, incident_id, last_message, pending, updated_ms "
                   "FROM alert_incidents ORDER BY alert, incident_id");
  while (select.step()) {
    AlertIncidentRow row;
    row.alert = select.text(0);
    row.incident_id = select.integer(1);
    row.last_message = select.text(2);
    row.pending = select.integer(3) != 0;
    row.updated_ms = select.integer(4);
    rows.push_back(std::move(row));
  }
  for (AlertIncidentRow& row : rows) {
    Statement members(db_,
                      "SELECT probe, probe_type, error, detail, down_ms, up_ms, told "
                      "FROM alert_incident_members WHERE alert = ?1 AND incident_id = ?2 "
                      "ORDER BY position");
    members.bind(1, row.alert).bind(2, row.incident_id);
    while (members.step()) {
      AlertIncidentMemberRow member;
      member.probe = members.text(0);
      member.probe_type = members.text(1);
      member.error = parse_error_class(members.text(2)).value_or(ErrorClass::internal);
      member.detail = members.text(3);
      member.down_ms = members.integer(4);
      member.up_ms = members.integer(5);
      member.told = members.integer(6) != 0;
      row.members.push_back(std::move(member));
    }
  }
  return rows;
}

bool Store::incident_exists(int64_t incident_id) const {
  Statement select(db_, "SELECT 1 FROM incidents WHERE id = ?");
  select.bind(1, incident_id);
  return select.step();
}

namespace {
constexpr const char* kNoteColumns =
    "SELECT id, incident_id, status, text, at_ms FROM incident_notes";
}  // namespace

std::vector<IncidentNoteRow> Store::incident_notes(const std::vector<int64_t>& incident_ids) const {
  std::vector<IncidentNoteRow> notes;
  const std::string sql = fmt::format("{} WHERE incident_id = ? ORDER BY at_ms, id", kNoteColumns);
  for (const int64_t incident_id : incident_ids) {
    Statement select(db_, sql.c_str());
    select.bind(1, incident_id);
    while (select.step()) {
      notes.push_back({select.integer(0), select.integer(1), select.text(2), select.text(3),
                       select.integer(4)});
    }
  }
  return notes;
}

std::optional<IncidentNoteRow> Store::latest_incident_note(int64_t incident_id) const {
  std::vector<IncidentNoteRow> notes = incident_notes({incident_id});
  if (notes.empty()) return std::nullopt;
  return std::move(notes.back());
}

std::vector<NoticeRow> Store::notices_shown_at(int64_t now_ms) const {
  Statement select(db_,
                   "SELECT id, text, components, until_ms, at_ms FROM notices "
                   "WHERE until_ms IS NULL OR until_ms > ? ORDER BY at_ms, id");
  select.bind(1, now_ms);
  std::vector<NoticeRow> notices;
  while (select.step()) {
    NoticeRow notice;
    notice.id = select.integer(0);
    notice.text = select.text(1);
    const std::string components = select.text(2);
    for (size_t from = 0, end; (end = components.find('\n', from)) != std::string::npos;
         from = end + 1) {
      notice.components.push_back(components.substr(from, end - from));
    }
    if (!select.is_null(3)) notice.until_ms = select.integer(3);
    notice.at_ms = select.integer(4);
    notices.push_back(std::move(notice));
  }
  return notices;
}

void Store::write_outage(const OutageRow& row) { upsert_outage(row); }
void Store::write_incident(const IncidentRow& row) { upsert_incident(row); }

int64_t Store::max_outage_id() const {
  Statement select(db_, "SELECT coalesce(max(id), 0) FROM outages");
  select.step();
  return select.integer(0);
}

int64_t Store::max_incident_id() const {
  Statement select(db_, "SELECT coalesce(max(id), 0) FROM incidents");
  select.step();
  return select.integer(0);
}

void Store::set_auto_checkpoint(bool on) {
  exec(on ? "PRAGMA wal_autocheckpoint=1000" : "PRAGMA wal_autocheckpoint=0");
}

void Store::checkpoint() {
  if (sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr) !=
      SQLITE_OK) {
    throw StoreError(fmt::format("sqlite checkpoint: {}", sqlite3_errmsg(db_)));
  }
}

void Store::close_open_outages(int64_t end_ms, const std::string& end_reason) {
  Statement update(db_,
                   "UPDATE outages SET end_ms=max(?, start_ms), end_reason=? WHERE end_ms IS NULL");
  update.bind(1, end_ms).bind(2, end_reason).step();
  Statement incidents(db_,
                      "UPDATE incidents SET end_ms=(SELECT max(end_ms) FROM outages WHERE "
                      "incident_id=incidents.id) "
                      "WHERE end_ms IS NULL");
  incidents.step();
}

int64_t Store::prune_rollups_before(int64_t cutoff_ms) {
  const int64_t cutoff = cutoff_ms - cutoff_ms % kMinuteMs;
  exec("BEGIN IMMEDIATE");
  try {
    Statement remove(db_, "DELETE FROM rollups WHERE minute_ms < ?");
    remove.bind(1, cutoff).step();
    const int64_t removed = sqlite3_changes(db_);
    const int64_t hour = cutoff - cutoff % kHourMs;
    Statement hours(db_, "DELETE FROM hour_totals WHERE hour_ms < ?");
    hours.bind(1, hour).step();
    if (hour < cutoff) {  // the hour it cuts through keeps only its later minutes
      std::vector<int64_t> probe_ids;
      Statement probes(db_, "SELECT id FROM probes ORDER BY id");
      while (probes.step()) probe_ids.push_back(probes.integer(0));
      for (int64_t probe_id : probe_ids) recount_hour(probe_id, hour);
    }
    exec("COMMIT");
    return removed;
  } catch (...) {
    rollback();
    throw;
  }
}

PruneCounts& PruneCounts::operator+=(const PruneCounts& other) {
  sample_blocks += other.sample_blocks;
  rollups += other.rollups;
  job_outputs += other.job_outputs;
  details += other.details;
  blind_windows += other.blind_windows;
  more = more || other.more;
  return *this;
}

PruneCounts Store::prune_step(const PruneCutoffs& cutoffs, int64_t max_rows) {
  const int64_t samples_cutoff = cutoffs.samples_before_ms - cutoffs.samples_before_ms % kMinuteMs;
  const int64_t rollups_cutoff = cutoffs.rollups_before_ms - cutoffs.rollups_before_ms % kMinuteMs;
  PruneCounts removed;
  // The ids from the index alone: a damaged row known to be beyond deleting is passed over.
  std::vector<int64_t> old_blocks;
  {
    Statement select(
        db_, "SELECT id FROM sample_blocks WHERE minute_ms < ?1 ORDER BY minute_ms LIMIT ?2");
    select.bind(1, samples_cutoff)
        .bind(2, max_rows + static_cast<int64_t>(undeletable_rows_.size()));
    while (select.step()) {
      const int64_t row = select.integer(0);
      if (!undeletable_rows_.contains(row) && static_cast<int64_t>(old_blocks.size()) < max_rows) {
        old_blocks.push_back(row);
      }
    }
  }
  exec("BEGIN IMMEDIATE");
  try {
    for (int64_t row : old_blocks)
      prepared("DELETE FROM sample_blocks WHERE id=?").bind(1, row).step();
    removed.sample_blocks = static_cast<int64_t>(old_blocks.size());

    // Rollups have no index by minute alone: each probe's oldest, by its key, until the step's rows
    // are used.
    std::vector<int64_t> probe_ids;
    Statement probes(db_, "SELECT id FROM probes ORDER BY id");
    while (probes.step()) probe_ids.push_back(probes.integer(0));
    for (int64_t probe_id : probe_ids) {
      const int64_t left = max_rows - removed.rollups;
      if (left <= 0) {
        removed.more = true;
        break;
      }
      // The step's bound for this probe: its rows before it go, with the hours they made up.
      Statement bound(db_,
                      "SELECT coalesce((SELECT minute_ms FROM rollups WHERE probe_id = ?1 AND "
                      "minute_ms < ?2 ORDER BY minute_ms LIMIT 1 OFFSET ?3), ?2)");
      bound.bind(1, probe_id).bind(2, rollups_cutoff).bind(3, left).step();
      const int64_t until = bound.integer(0);
      Statement rollups(db_, "DELETE FROM rollups WHERE probe_id = ? AND minute_ms < ?");
      rollups.bind(1, probe_id).bind(2, until).step();
      const int removed_here = sqlite3_changes(db_);
      removed.rollups += removed_here;
      if (removed_here > 0) {
        const int64_t hour = until - until % kHourMs;
        Statement hours(db_, "DELETE FROM hour_totals WHERE probe_id = ? AND hour_ms < ?");
        hours.bind(1, probe_id).bind(2, hour).step();
        if (hour < until) recount_hour(probe_id, hour);  // the hour the bound cuts through
      }
    }

    // A run's output goes with the raw samples of its time; the run itself stays, like outages.
    // It is written again without it: an UPDATE that shrinks a row leaves its page as full
    // as it was (one 10 KiB run a page, measured), a DELETE lets SQLite merge the pages.
    // Each is a row deleted and three pages freed (and zeroed: SQLite's secure_delete), so fewer a
    // step.
    const int64_t max_runs = std::max<int64_t>(1, max_rows / 10);
    std::vector<JobRunRow> runs;
    {
      Statement select(db_,
                       "SELECT id, probe_id, rid, start_ms, end_ms, exit_status, failed FROM "
                       "job_runs WHERE output != '' "
                       "AND coalesce(end_ms, start_ms) < ?1 LIMIT ?2");
      select.bind(1, samples_cutoff).bind(2, max_runs);
      while (select.step()) {
        JobRunRow run;
        run.id = select.integer(0);
        run.probe_id = select.integer(1);
        run.rid = select.text(2);
        if (!select.is_null(3)) run.start_ms = select.integer(3);
        if (!select.is_null(4)) run.end_ms = select.integer(4);
        if (!select.is_null(5)) run.exit_status = static_cast<int>(select.integer(5));
        run.failed = select.integer(6) != 0;
        runs.push_back(std::move(run));
      }
    }
    for (const JobRunRow& run : runs)
      prepared("DELETE FROM job_runs WHERE id=?").bind(1, run.id).step();
    for (const JobRunRow& run : runs) upsert_job_run(run);
    removed.job_outputs = static_cast<int64_t>(runs.size());

    // Reports without rollups have no use for blind windows either.
    Statement blind(db_,
                    "DELETE FROM blind_windows WHERE id IN (SELECT id FROM blind_windows WHERE "
                    "start_ms < ?1 AND "
                    "end_ms < ?1 LIMIT ?2)");
    blind.bind(1, rollups_cutoff).bind(2, max_rows).step();
    removed.blind_windows = sqlite3_changes(db_);

    // A detail whose last use (written at most kDetailTouchEveryMs late) is older than every
    // block still stored is referred to by none of them.
    Statement oldest(db_, "SELECT min(minute_ms) FROM sample_blocks");
    oldest.step();
    const int64_t oldest_block =
        oldest.is_null(0) ? samples_cutoff : std::min(samples_cutoff, oldest.integer(0));
    Statement details(db_,
                      "DELETE FROM details WHERE id IN (SELECT id FROM details WHERE last_used_ms "
                      "< ?1 LIMIT ?2)");
    details.bind(1, oldest_block - kDetailTouchEveryMs - kMinuteMs).bind(2, max_rows).step();
    removed.details = sqlite3_changes(db_);
    exec("COMMIT");
  } catch (const StoreCorrupt& error) {
    rollback();
    // A damaged block SQLite cannot delete: each row on its own, outside a transaction, to
    // find it; the next step passes it over.
    PruneCounts sifted;
    for (int64_t row : old_blocks) {
      try {
        prepared("DELETE FROM sample_blocks WHERE id=?").bind(1, row).step();
        ++sifted.sample_blocks;
      } catch (const StoreCorrupt&) {
        if (undeletable_rows_.insert(row).second) {
          log_warn("store: damaged block cannot be pruned, kept unread row={} err={}", row,
                   error.what());
        }
      }
    }
    sifted.more = true;
    return sifted;
  } catch (...) {
    rollback();
    throw;
  }
  if (removed.details > 0) forget_details();  // the cache must not hand out an id that is gone
  removed.more = removed.more || removed.sample_blocks == max_rows || removed.rollups == max_rows ||
                 removed.job_outputs == std::max<int64_t>(1, max_rows / 10) ||
                 removed.blind_windows == max_rows || removed.details == max_rows;
  return removed;
}

std::vector<Rollup> Store::rollups(const std::string& probe, int64_t from_ms, int64_t to_ms) const {
  Statement& select = prepared(
      "SELECT r.minute_ms, r.count, r.down, r.degraded, r.p50_us, r.p95_us, r.max_us, "
      "coalesce(r.first_ms, r.minute_ms) FROM rollups r "
      "JOIN probes p ON p.id = r.probe_id WHERE p.name = ? AND r.minute_ms >= ? AND "
      "r.minute_ms < ? "
      "ORDER BY r.minute_ms");
  const ResetAfterRead done(select);
  select.bind(1, probe).bind(2, from_ms - from_ms % kMinuteMs).bind(3, to_ms);
  std::vector<Rollup> rows;
  while (select.step()) {
    rows.push_back({select.integer(0), select.integer(1), select.integer(2), select.integer(3),
                    select.integer(4), select.integer(5), select.integer(6), select.integer(7)});
  }
  return rows;
}

void Store::add_blind_window(const BlindWindow& window) {
  Statement insert(db_, "INSERT INTO blind_windows(start_ms, end_ms, reason) VALUES(?,?,?)");
  insert.bind(1, window.start_ms).bind(2, window.end_ms).bind(3, window.reason).step();
}

int64_t Store::prune_samples_before(int64_t cutoff_ms) {
  Statement remove(db_, "DELETE FROM sample_blocks WHERE minute_ms < ?");
  remove.bind(1, cutoff_ms - cutoff_ms % kMinuteMs).step();
  return sqlite3_changes(db_);
}

std::optional<int64_t> Store::last_alive_ms() const {
  Statement select(db_, "SELECT value FROM meta WHERE key='last_alive_ms'");
  if (!select.step()) return std::nullopt;
  return select.integer(0);
}

std::vector<std::string> Store::probe_names() const {
  std::vector<std::string> names;
  Statement select(db_, "SELECT name FROM probes ORDER BY name");
  while (select.step()) names.push_back(select.text(0));
  return names;
}

void add_rollup_totals(RollupTotals& a, const RollupTotals& b) {
  if (b.minutes == 0) return;
  if (a.minutes == 0) {
    a.first_minute_ms = b.first_minute_ms;
    a.last_minute_ms = b.last_minute_ms;
    a.first_sample_ms = b.first_sample_ms;
  } else {
    a.first_minute_ms = std::min(a.first_minute_ms, b.first_minute_ms);
    a.last_minute_ms = std::max(a.last_minute_ms, b.last_minute_ms);
    a.first_sample_ms = std::min(a.first_sample_ms, b.first_sample_ms);
  }
  a.minutes += b.minutes;
  a.samples += b.samples;
  a.down += b.down;
  a.degraded += b.degraded;
}

RollupTotals Store::rollup_totals(const std::string& probe, int64_t from_ms, int64_t to_ms) const {
  // The minutes before the first whole hour and from the last one's end; the hours between.
  const int64_t from_minute = from_ms - from_ms % kMinuteMs;
  const int64_t first_hour =
      from_minute % kHourMs == 0 ? from_minute : from_minute - from_minute % kHourMs + kHourMs;
  const int64_t hours_end = to_ms - to_ms % kHourMs;
  if (from_minute < 0 || first_hour >= hours_end) {
    auto buckets = rollup_totals_by(probe, from_ms, to_ms, 0);
    return buckets.empty() ? RollupTotals{} : buckets.front();
  }
  // One statement, so that the hours and the minutes at the edges are read from one snapshot:
  // the writer recounts an hour in the same transaction as its minutes.
  Statement& select = prepared(
      "SELECT sum(minutes), min(first_minute_ms), max(last_minute_ms), sum(samples), "
      "sum(down), sum(degraded), min(first_ms) FROM ("
      "SELECT h.minutes, h.first_minute_ms, h.last_minute_ms, h.samples, h.down, h.degraded, "
      "h.first_ms FROM hour_totals h WHERE h.probe_id = (SELECT id FROM probes WHERE name = ?1) "
      "AND h.hour_ms >= ?3 AND h.hour_ms < ?4 "
      "UNION ALL SELECT 1, r.minute_ms, r.minute_ms, r.count, r.down, r.degraded, "
      "coalesce(r.first_ms, r.minute_ms) FROM rollups r "
      "WHERE r.probe_id = (SELECT id FROM probes WHERE name = ?1) "
      "AND r.minute_ms >= ?2 AND r.minute_ms < ?3 AND r.count > 0 "
      "UNION ALL SELECT 1, r.minute_ms, r.minute_ms, r.count, r.down, r.degraded, "
      "coalesce(r.first_ms, r.minute_ms) FROM rollups r "
      "WHERE r.probe_id = (SELECT id FROM probes WHERE name = ?1) "
      "AND r.minute_ms >= ?4 AND r.minute_ms < ?5 AND r.count > 0)");
  const ResetAfterRead done(select);
  select.bind(1, probe).bind(2, from_minute).bind(3, first_hour).bind(4, hours_end).bind(5, to_ms);
  if (!select.step() || select.is_null(0)) return {};
  return {select.integer(0), select.integer(1), select.integer(2), select.integer(3),
          select.integer(4), select.integer(5), select.integer(6)};
}

std::vector<RollupTotals> Store::hour_totals(const std::string& probe, int64_t from_ms,
                                             int64_t to_ms) const {
  Statement& select = prepared(
      "SELECT h.minutes, h.first_minute_ms, h.last_minute_ms, h.samples, h.down, h.degraded, "
      "h.first_ms FROM hour_totals h JOIN probes p ON p.id = h.probe_id "
      "WHERE p.name = ?1 AND h.hour_ms >= ?2 AND h.hour_ms < ?3 ORDER BY h.hour_ms");
  const ResetAfterRead done(select);
  select.bind(1, probe).bind(2, from_ms).bind(3, to_ms);
  std::vector<RollupTotals> hours;
  while (select.step()) {
    hours.push_back({select.integer(0), select.integer(1), select.integer(2), select.integer(3),
                     select.integer(4), select.integer(5), select.integer(6)});
  }
  return hours;
}

std::vector<RollupTotals> Store::rollup_totals_by(const std::string& probe, int64_t from_ms,
                                                  int64_t to_ms, int64_t bucket_ms) const {
  // Bucket 0 means one bucket for the whole range.
  Statement& select = prepared(
      "SELECT count(*), min(r.minute_ms), max(r.minute_ms), sum(r.count), "
      "sum(r.down), sum(r.degraded), "
      "min(coalesce(r.first_ms, r.minute_ms)) "
      "FROM rollups r JOIN probes p ON p.id = r.probe_id "
      "WHERE p.name = ?1 AND r.minute_ms >= ?2 AND r.minute_ms < ?3 AND r.count > 0 "
      "GROUP BY CASE WHEN ?4 = 0 THEN 0 ELSE r.minute_ms / ?4 END ORDER BY 2");
  const ResetAfterRead done(select);
  select.bind(1, probe).bind(2, from_ms - from_ms % kMinuteMs).bind(3, to_ms).bind(4, bucket_ms);
  std::vector<RollupTotals> buckets;
  while (select.step()) {
    buckets.push_back({select.integer(0), select.integer(1), select.integer(2), select.integer(3),
                       select.integer(4), select.integer(5), select.integer(6)});
  }
  return buckets;
}

namespace {

constexpr const char* kOutageColumns =
    "SELECT o.id, p.name, o.start_ms, o.end_ms, o.error, o.detail, o.down_samples, "
    "coalesce(o.end_reason, ''), "
    "o.incident_id, o.kind, o.in_maintenance FROM outages o JOIN probes p ON p.id = o.probe_id ";

}  // namespace

std::vector<OutageRecord> Store::read_outages(Statement& select) const {
  std::vector<OutageRecord> rows;
  while (select.step()) {
    OutageRecord row;
    row.id = select.integer(0);
    row.probe = select.text(1);
    row.start_ms = select.integer(2);
    if (!select.is_null(3)) row.end_ms = select.integer(3);
    row.error = parse_error_class(select.text(4)).value_or(ErrorClass::internal);
    row.detail = select.text(5);
    row.down_samples = select.integer(6);
    row.end_reason = select.text(7);
    if (!select.is_null(8)) row.incident_id = select.integer(8);
    row.kind = select.text(9) == "brownout" ? OutageKind::brownout : OutageKind::outage;
    row.in_maintenance = select.integer(10) != 0;
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<OutageRecord> Store::outages(int64_t from_ms, int64_t to_ms, const std::string& probe,
                                         OutageKind kind) const {
  // Built once: the kept statement is found by the text's address.
  static const std::string sql = fmt::format(
      "{} WHERE o.start_ms < ?1 AND (o.end_ms IS NULL OR o.end_ms > ?2) AND "
      "(?3 = '' OR p.name = ?3) AND o.kind = ?4 ORDER BY o.start_ms, p.name",
      kOutageColumns);
  Statement& select = prepared(sql.c_str());
  const ResetAfterRead done(select);
  select.bind(1, to_ms).bind(2, from_ms).bind(3, probe).bind(4, std::string(to_string(kind)));
  return read_outages(select);
}

std::vector<OutageRecord> Store::recent_incident_outages(int64_t limit) const {
  Statement select(
      db_,
      fmt::format(
          "{} WHERE o.kind = 'outage' AND o.incident_id IN "
          "(SELECT id FROM incidents ORDER BY start_ms DESC LIMIT ?) ORDER BY o.start_ms, p.name",
          kOutageColumns)
          .c_str());
  select.bind(1, limit);
  return read_outages(select);
}

std::map<int64_t, OutageTotals> Store::outage_totals() const {
  Statement select(db_,
                   "SELECT probe_id, count(*), coalesce(sum(end_ms - start_ms), 0) FROM outages "
                   "WHERE kind = 'outage' GROUP BY probe_id");
  std::map<int64_t, OutageTotals> totals;
  while (select.step()) totals[select.integer(0)] = {select.integer(1), select.integer(2)};
  return totals;
}

std::map<std::string, int64_t> Store::blind_ms_by_reason() const {
  Statement select(db_, "SELECT reason, sum(end_ms - start_ms) FROM blind_windows GROUP BY reason");
  std::map<std::string, int64_t> totals;
  while (select.step()) totals[select.text(0)] = select.integer(1);
  return totals;
}

int64_t Store::pending_samples() const {
  int64_t pending = 0;
  for (const auto& [id, buffer] : buffers_) pending += static_cast<int64_t>(buffer.pending.size());
  return pending;
}

std::vector<BlindWindow> Store::blind_windows(int64_t from_ms, int64_t to_ms) const {
  Statement& select = prepared(
      "SELECT start_ms, end_ms, reason FROM blind_windows WHERE start_ms < ? AND end_ms > ? "
      "ORDER BY start_ms");
  const ResetAfterRead done(select);
  select.bind(1, to_ms).bind(2, from_ms);
  std::vector<BlindWindow> rows;
  while (select.step()) rows.push_back({select.integer(0), select.integer(1), select.text(2)});
  return rows;
}

std::vector<Sample> Store::samples(const std::string& probe, int64_t from_ms, int64_t to_ms,
                                   bool with_details) const {
  Statement& select = prepared(
      "SELECT b.minute_ms, b.data FROM sample_blocks b JOIN probes p ON p.id = b.probe_id "
      "WHERE p.name = ? AND b.minute_ms >= ? AND b.minute_ms < ? ORDER BY b.minute_ms, b.id");
  const ResetAfterRead done(select);
  // A block holds samples from its minute on (later ones only after a clock step back).
  select.bind(1, probe).bind(2, from_ms - from_ms % kMinuteMs - kMinuteMs).bind(3, to_ms);
  std::map<int64_t, std::string> details;
  if (with_details) {
    Statement& detail = prepared("SELECT id, text FROM details");
    const ResetAfterRead details_done(detail);
    while (detail.step()) details.emplace(detail.integer(0), detail.text(1));
  }
  std::vector<Sample> out;
  std::vector<StoredSample> block;  // one block's samples at a time, its room kept
  while (select.step()) {
    block.clear();
    decode_sample_block(select.integer(0), select.view(1), block);
    for (StoredSample& stored : block) {
      if (stored.sample.sent_ms < from_ms || stored.sample.sent_ms >= to_ms) continue;
      if (auto text = details.find(stored.detail_id); text != details.end()) {
        stored.sample.detail = detail_from_template(text->second, stored.detail_numbers);
      }
      out.push_back(std::move(stored.sample));
    }
  }
  return out;
}

std::optional<int64_t> Store::first_sample_minute(const std::string& probe, int64_t from_ms) const {
  Statement& select = prepared(
      "SELECT min(b.minute_ms) FROM sample_blocks b JOIN probes p ON p.id = b.probe_id "
      "WHERE p.name = ? AND b.minute_ms >= ?");
  const ResetAfterRead done(select);
  select.bind(1, probe).bind(2, from_ms == INT64_MIN ? INT64_MIN : from_ms - from_ms % kMinuteMs);
  if (!select.step() || select.is_null(0)) return std::nullopt;
  return select.integer(0);
}

int64_t Store::samples_stored_from(const std::string& probe, int64_t from_ms,
                                   int64_t minutes) const {
  Statement& select = prepared(
      "SELECT coalesce(sum(count), 0) FROM (SELECT r.count FROM rollups r "
      "JOIN probes p ON p.id = r.probe_id WHERE p.name = ? AND r.minute_ms >= ? "
      "ORDER BY r.minute_ms LIMIT ?)");
  const ResetAfterRead done(select);
  select.bind(1, probe).bind(2, from_ms - from_ms % kMinuteMs).bind(3, minutes);
  select.step();
  return select.integer(0);
}

void Store::set_vantage(const std::string& name) {
  Statement upsert(db_,
                   "INSERT INTO labels(key, value) VALUES('vantage', ?) "
                   "ON CONFLICT(key) DO UPDATE SET value=excluded.value");
  upsert.bind(1, name).step();
}

std::string Store::vantage() const {
  Statement select(db_, "SELECT value FROM labels WHERE key='vantage'");
  return select.step() ? select.text(0) : std::string();
}

std::vector<StoredComponent> Store::components() const {
  Statement& select = prepared("SELECT name, type, interval_ms, confirm FROM probes ORDER BY name");
  const ResetAfterRead done(select);
  std::vector<StoredComponent> out;
  while (select.step()) {
    out.push_back(
        {select.text(0), select.text(1), select.integer(2), static_cast<int>(select.integer(3))});
  }
  return out;
}

std::map<std::string, int64_t> Store::ship_cursors(const std::string& endpoint) const {
  Statement select(db_, "SELECT probe, sent_ms FROM ship_cursors WHERE endpoint = ?");
  select.bind(1, endpoint);
  std::map<std::string, int64_t> out;
  while (select.step()) out.emplace(select.text(0), select.integer(1));
  return out;
}

void Store::upsert_ship_cursor(const ShipCursor& cursor) {
  Statement& upsert = prepared(
      "INSERT INTO ship_cursors(endpoint, probe, sent_ms) VALUES(?, ?, ?) "
      "ON CONFLICT(endpoint, probe) DO UPDATE SET sent_ms=excluded.sent_ms");
  upsert.bind(1, cursor.endpoint).bind(2, cursor.probe).bind(3, cursor.sent_ms).step();
}

}  // namespace blip

#include "support/damaged_file.hpp"

#include <sqlite3.h>

#include <fstream>
#include <random>
#include <stdexcept>

namespace blip::test {
namespace {

constexpr int64_t kPageBytes = 4096;

std::string random_bytes(int64_t count, uint64_t seed) {
  std::mt19937_64 random(seed);
  std::string bytes(static_cast<size_t>(count), '\0');
  for (char& byte : bytes) byte = static_cast<char>(random() & 0xff);
  return bytes;
}

}  // namespace

void write_garbage(const std::string& path, int64_t bytes, uint64_t seed) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string data = random_bytes(bytes, seed);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

void overwrite_at(const std::string& path, int64_t offset, const std::string& bytes) {
  std::fstream file(path, std::ios::binary | std::ios::in | std::ios::out);
  file.seekp(offset);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file) throw std::runtime_error("cannot overwrite " + path);
}

void overwrite_page(const std::string& db, int64_t page, uint64_t seed) {
  overwrite_at(db, (page - 1) * kPageBytes, random_bytes(kPageBytes, seed));
}

std::vector<int64_t> table_pages(const std::string& db, const std::string& table,
                                 const std::string& type) {
  sqlite3* handle = nullptr;
  if (sqlite3_open_v2(db.c_str(), &handle, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(handle);
    throw std::runtime_error("cannot open " + db);
  }
  sqlite3_stmt* select = nullptr;
  std::vector<int64_t> pages;
  if (sqlite3_prepare_v2(handle,
                         "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY path",
                         -1, &select, nullptr) == SQLITE_OK) {
    sqlite3_bind_text(select, 1, table.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(select, 2, type.c_str(), -1, SQLITE_TRANSIENT);
    while (sqlite3_step(select) == SQLITE_ROW) pages.push_back(sqlite3_column_int64(select, 0));
  }
  const std::string error = sqlite3_errmsg(handle);
  sqlite3_finalize(select);
  sqlite3_close(handle);
  if (pages.empty())
    throw std::runtime_error("no " + type + " pages of " + table + " in " + db + ": " + error);
  return pages;
}

void leave_wal(const std::string& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  char* error = nullptr;
  const bool opened = sqlite3_open(db.c_str(), &handle) == SQLITE_OK;
  if (opened) sqlite3_db_config(handle, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  const bool ran = opened && sqlite3_exec(handle, ("PRAGMA journal_mode=WAL; " + sql).c_str(),
                                          nullptr, nullptr, &error) == SQLITE_OK;
  const std::string message = error ? error : sqlite3_errmsg(handle);
  sqlite3_free(error);
  sqlite3_close(handle);
  if (!ran) throw std::runtime_error(sql + ": " + message);
}

void run_sql(const std::string& db, const std::string& sql) {
  sqlite3* handle = nullptr;
  char* error = nullptr;
  const bool opened = sqlite3_open(db.c_str(), &handle) == SQLITE_OK;
  const bool ran =
      opened && sqlite3_exec(handle, sql.c_str(), nullptr, nullptr, &error) == SQLITE_OK;
  const std::string message = error ? error : sqlite3_errmsg(handle);
  sqlite3_free(error);
  sqlite3_close(handle);
  if (!ran) throw std::runtime_error(sql + ": " + message);
}

}  // namespace blip::test

#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace blip::test {

// Real damage to real SQLite files, for the tests of what blip does with it.

// Overwrites (or creates) `path` with `bytes` random bytes.
void write_garbage(const std::string& path, int64_t bytes, uint64_t seed = 17);
// The pages of `table` (a b-tree name in dbstat) of one type ("leaf", "internal", "overflow"), in
// b-tree order.
std::vector<int64_t> table_pages(const std::string& db, const std::string& table,
                                 const std::string& type);
// Overwrites one whole page of a database file (1-based, 4096 bytes) with random bytes.
void overwrite_page(const std::string& db, int64_t page, uint64_t seed = 23);
// Overwrites `bytes` at `offset` of a file.
void overwrite_at(const std::string& path, int64_t offset, const std::string& bytes);
// Runs `sql` in WAL mode and closes without a checkpoint: a -wal holding that commit, and its -shm,
// stay.
void leave_wal(const std::string& db, const std::string& sql);
// Runs one SQL statement on a database with the sqlite3 library (no blip code); throws on error.
void run_sql(const std::string& db, const std::string& sql);

}  // namespace blip::test

// What a stored sample costs against what it holds (bench/sample_bytes.sh): reads every
// sample_blocks row of a blip database, then prints, per sample,
//  - the payload as stored, and each row's samples coded again in layout 1 and layout 2;
//  - an order-0 entropy estimate of each column at the codec's units (send-time delta of
//    delta, status runs, each phase, latency less the phases' sum, a down sample's error
//    and detail), each probe's on its own: what a coder with one fixed table per column
//    and probe could reach (table not counted); and the same floor were the durations kept
//    to 100 µs or 1 ms, to show what the 10 µs resolution costs;
//  - how long decoding the last --decode-hours of blocks takes in each layout, in rounds
//    taken in turn (old, new, old, ...) so both see the same machine; the median counts.
// With --legacy-copy PATH it also writes a copy of the database with every row in layout 1.
#include <fmt/format.h>
#include <sqlite3.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <ctime>
#include <iostream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "blip/store/sample_codec.hpp"

namespace {

struct Row {
  int64_t id;
  int64_t probe_id;
  int64_t minute_ms;
  std::string data;
};

void check(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
    throw std::runtime_error(fmt::format("{}: {}", what, sqlite3_errmsg(db)));
}

// Shannon entropy, in bits, of the values counted in `counts` (each count a value's).
template <typename Map>
double entropy_bits(const Map& counts) {
  double total = 0;
  for (const auto& [value, count] : counts) total += static_cast<double>(count);
  double bits = 0;
  for (const auto& [value, count] : counts) {
    const double p = static_cast<double>(count) / total;
    bits -= static_cast<double>(count) * std::log2(p);
  }
  return bits;
}

int64_t units(int64_t us) { return (us + 5) / 10; }  // the codec's 10 µs, as stored

using Blocks = std::vector<std::pair<int64_t, std::string>>;

// This thread's CPU time: on a shared machine, time spent waiting for a core is not decoding.
double cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double decode_seconds(const Blocks& blocks, std::vector<blip::StoredSample>& out) {
  const double start = cpu_seconds();
  size_t samples = 0;
  for (const auto& [base_ms, bytes] : blocks) {
    out.clear();
    blip::decode_sample_block(base_ms, bytes, out);
    samples += out.size();
  }
  if (samples == 0) std::cerr << "no samples\n";
  return cpu_seconds() - start;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bytes per stored sample against the samples' entropy"};
  std::string db_path;
  std::string legacy_copy;
  double decode_hours = 24;
  int rounds = 9;
  app.add_option("--db", db_path)->required();
  app.add_option("--legacy-copy", legacy_copy, "write a copy with every block in layout 1");
  app.add_option("--decode-hours", decode_hours, "decode the last this many hours")
      ->capture_default_str();
  app.add_option("--rounds", rounds, "decode rounds per layout")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  sqlite3* db = nullptr;
  check(sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), db, "open");
  std::vector<Row> rows;
  {
    sqlite3_stmt* select = nullptr;
    check(sqlite3_prepare_v2(db,
                             "SELECT id, probe_id, minute_ms, data FROM sample_blocks "
                             "ORDER BY probe_id, minute_ms, id",
                             -1, &select, nullptr),
          db, "prepare");
    while (sqlite3_step(select) == SQLITE_ROW) {
      const auto* data = static_cast<const char*>(sqlite3_column_blob(select, 3));
      rows.push_back(
          {sqlite3_column_int64(select, 0), sqlite3_column_int64(select, 1),
           sqlite3_column_int64(select, 2),
           std::string(data ? data : "", static_cast<size_t>(sqlite3_column_bytes(select, 3)))});
    }
    sqlite3_finalize(select);
  }
  sqlite3_close(db);

  int64_t samples = 0;
  size_t stored = 0, legacy = 0, columnar = 0;
  int64_t last_minute_ms = 0;
  // Per probe (its counts, cleared as the next probe's rows begin), and summed over probes.
  constexpr int kColumns = 8;
  std::map<uint64_t, int64_t> counts[kColumns];
  auto& time_counts = counts[0];
  auto& status_run_counts = counts[1];
  std::map<uint64_t, int64_t>* phase_counts = &counts[2];
  auto& residual_counts = counts[6];
  auto& down_counts = counts[7];
  double column_bits[kColumns] = {};
  // The durations' columns (four phases, latency beyond them) at coarser units.
  constexpr int64_t kCoarseUs[] = {100, 1000};
  std::map<uint64_t, int64_t> coarse_counts[2][5];
  double coarse_bits[2] = {};
  auto end_probe = [&] {
    for (int c = 0; c < kColumns; ++c) {
      column_bits[c] += entropy_bits(counts[c]);
      counts[c].clear();
    }
    for (int k = 0; k < 2; ++k) {
      for (auto& column : coarse_counts[k]) {
        coarse_bits[k] += entropy_bits(column);
        column.clear();
      }
    }
  };
  int64_t previous_probe = -1, previous_ms = 0, previous_delta = 0;
  int last_status = -1;
  uint64_t run = 0;
  auto end_run = [&] {
    if (last_status >= 0) ++status_run_counts[(run << 2) | static_cast<uint64_t>(last_status)];
  };
  std::vector<std::string> legacy_blobs(rows.size());
  double legacy_encode_seconds = 0, columnar_encode_seconds = 0;
  Blocks legacy_blocks, columnar_blocks;
  for (const Row& row : rows) last_minute_ms = std::max(last_minute_ms, row.minute_ms);
  const auto decode_from_ms = last_minute_ms - static_cast<int64_t>(decode_hours * 3'600'000);
  for (size_t r = 0; r < rows.size(); ++r) {
    const Row& row = rows[r];
    const auto decoded = blip::decode_sample_block(row.minute_ms, row.data);
    blip::SampleBlockEncoder old_layout(row.minute_ms, blip::SampleBlockEncoder::Layout::legacy);
    blip::SampleBlockEncoder new_layout(row.minute_ms, blip::SampleBlockEncoder::Layout::columnar);
    if (row.probe_id != previous_probe) {
      end_run();
      end_probe();
      last_status = -1;
      previous_probe = row.probe_id;
      previous_ms = row.minute_ms;
      previous_delta = 0;
    }
    // Encoding each layout, timed on its own (appends and the bytes, as a write does).
    double started = cpu_seconds();
    for (const blip::StoredSample& s : decoded)
      old_layout.append(s.sample, s.detail_id, s.detail_numbers);
    old_layout.bytes();
    legacy_encode_seconds += cpu_seconds() - started;
    started = cpu_seconds();
    for (const blip::StoredSample& s : decoded)
      new_layout.append(s.sample, s.detail_id, s.detail_numbers);
    new_layout.bytes();
    columnar_encode_seconds += cpu_seconds() - started;
    for (const blip::StoredSample& s : decoded) {
      // A probe's samples as one stream: the entropy, not the blocks, is measured here.
      const int64_t delta = s.sample.sent_ms - previous_ms;
      ++time_counts[static_cast<uint64_t>(delta - previous_delta)];
      previous_ms = s.sample.sent_ms;
      previous_delta = delta;
      const int status = static_cast<int>(s.sample.status);
      if (status != last_status) {
        end_run();
        last_status = status;
        run = 0;
      }
      ++run;
      const blip::Phases& p = s.sample.phases;
      const int64_t phase_units[] = {units(p.dns_us), units(p.connect_us), units(p.tls_us),
                                     units(p.first_byte_us)};
      for (int i = 0; i < 4; ++i) ++phase_counts[i][static_cast<uint64_t>(phase_units[i])];
      ++residual_counts[static_cast<uint64_t>(units(s.sample.latency_us) - phase_units[0] -
                                              phase_units[1] - phase_units[2] - phase_units[3])];
      for (int k = 0; k < 2; ++k) {
        const int64_t unit = kCoarseUs[k];
        const auto coarse = [unit](int64_t us) { return (us + unit / 2) / unit; };
        const int64_t c[] = {coarse(p.dns_us), coarse(p.connect_us), coarse(p.tls_us),
                             coarse(p.first_byte_us)};
        for (int i = 0; i < 4; ++i) ++coarse_counts[k][i][static_cast<uint64_t>(c[i])];
        ++coarse_counts[k][4][static_cast<uint64_t>(coarse(s.sample.latency_us) - c[0] - c[1] -
                                                    c[2] - c[3])];
      }
      if (s.sample.status == blip::Status::down) {
        ++down_counts[static_cast<uint64_t>(s.detail_id) * 64 +
                      static_cast<uint64_t>(s.sample.error) + (s.detail_numbers.empty() ? 0 : 32)];
      }
    }
    samples += static_cast<int64_t>(decoded.size());
    stored += row.data.size();
    legacy += old_layout.bytes().size();
    columnar += new_layout.bytes().size();
    legacy_blobs[r] = old_layout.bytes();
    if (row.minute_ms >= decode_from_ms) {
      legacy_blocks.emplace_back(row.minute_ms, old_layout.bytes());
      columnar_blocks.emplace_back(row.minute_ms, new_layout.bytes());
    }
  }
  end_run();
  end_probe();
  if (samples == 0) {
    std::cerr << "no samples in " << db_path << "\n";
    return 1;
  }
  const auto per = [&](double bytes) { return bytes / static_cast<double>(samples); };
  std::cout << fmt::format("samples {} in {} rows\n", samples, rows.size());
  std::cout << fmt::format("payload as stored:        {:.3f} bytes/sample\n", per(stored));
  std::cout << fmt::format("payload in layout 1 (old): {:.3f} bytes/sample\n", per(legacy));
  std::cout << fmt::format("payload in layout 2 (new): {:.3f} bytes/sample\n", per(columnar));
  struct Column {
    const char* name;
    double bits;
  };
  const Column columns[] = {
      {"send-time delta of delta", column_bits[0]},
      {"status runs", column_bits[1]},
      {"dns", column_bits[2]},
      {"connect", column_bits[3]},
      {"tls", column_bits[4]},
      {"first byte", column_bits[5]},
      {"latency - sum of phases", column_bits[6]},
      {"down: error, detail", column_bits[7]},
  };
  double total_bits = 0;
  std::cout << "order-0 entropy per column (bits/sample):\n";
  for (const Column& column : columns) {
    std::cout << fmt::format("  {:<26} {:7.3f}\n", column.name, per(column.bits));
    total_bits += column.bits;
  }
  std::cout << fmt::format("entropy floor:             {:.3f} bytes/sample\n", per(total_bits / 8));
  const double other_bits = column_bits[0] + column_bits[1] + column_bits[7];
  for (int k = 0; k < 2; ++k) {
    std::cout << fmt::format("entropy floor with durations in {} µs units: {:.3f} bytes/sample\n",
                             kCoarseUs[k], per((other_bits + coarse_bits[k]) / 8));
  }

  std::cout << fmt::format(
      "encode (CPU time, once): layout 1 {:.1f} ns/sample, layout 2 {:.1f} ns/sample\n",
      legacy_encode_seconds * 1e9 / static_cast<double>(samples),
      columnar_encode_seconds * 1e9 / static_cast<double>(samples));
  // Decode, the two layouts in turn.
  std::vector<blip::StoredSample> out;
  std::vector<double> old_seconds, new_seconds;
  int64_t decode_samples = 0;
  for (const auto& [base_ms, bytes] : columnar_blocks)
    decode_samples += static_cast<int64_t>(blip::decode_sample_block(base_ms, bytes).size());
  for (int round = 0; round < rounds; ++round) {
    old_seconds.push_back(decode_seconds(legacy_blocks, out));
    new_seconds.push_back(decode_seconds(columnar_blocks, out));
  }
  const double old_median = median(old_seconds), new_median = median(new_seconds);
  std::cout << fmt::format(
      "decode of the last {}h ({} samples, {} blocks), CPU time, median of {} rounds each: layout "
      "1 "
      "{:.1f} ms ({:.1f} ns/sample), layout 2 {:.1f} ms ({:.1f} ns/sample), new/old {:.2f}\n",
      decode_hours, decode_samples, columnar_blocks.size(), rounds, old_median * 1e3,
      old_median * 1e9 / static_cast<double>(decode_samples), new_median * 1e3,
      new_median * 1e9 / static_cast<double>(decode_samples), new_median / old_median);

  if (!legacy_copy.empty()) {
    sqlite3* copy = nullptr;
    check(sqlite3_open(legacy_copy.c_str(), &copy), copy, "open copy");
    check(sqlite3_exec(copy, "BEGIN", nullptr, nullptr, nullptr), copy, "begin");
    sqlite3_stmt* update = nullptr;
    check(sqlite3_prepare_v2(copy, "UPDATE sample_blocks SET data=? WHERE id=?", -1, &update,
                             nullptr),
          copy, "prepare update");
    for (size_t r = 0; r < rows.size(); ++r) {
      sqlite3_bind_blob(update, 1, legacy_blobs[r].data(), static_cast<int>(legacy_blobs[r].size()),
                        SQLITE_STATIC);
      sqlite3_bind_int64(update, 2, rows[r].id);
      check(sqlite3_step(update), copy, "update");
      sqlite3_reset(update);
    }
    sqlite3_finalize(update);
    check(sqlite3_exec(copy, "COMMIT", nullptr, nullptr, nullptr), copy, "commit");
    sqlite3_close(copy);
  }
  return 0;
}

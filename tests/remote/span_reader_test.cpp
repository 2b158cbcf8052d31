// SpanReader and the series it makes, on a store written by hand: what the remote-write
// sender (a cursor, holding back unsettled samples) and `blip export` (a range read in
// chunks) both read.
#include <gtest/gtest.h>

#include <climits>

#include "blip/remote/series.hpp"
#include "blip/store/store.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

constexpr int64_t kMinute = 60'000;
constexpr int64_t kSecond = 1'000;
// 2026-11-25T00:00:00Z
constexpr int64_t F = 1'795'564'800'000;

ProbeConfig probe_named(const std::string& name, int64_t interval_ms) {
  ProbeConfig config;
  config.name = name;
  config.type = "tcp";
  config.interval_ms = interval_ms;
  config.target_display = "127.0.0.1:1";
  config.settings = TcpSettings{"127.0.0.1", "1"};
  return config;
}

Sample sample_at(int64_t sent_ms, Status status = Status::up) {
  Sample sample;
  sample.sent_ms = sent_ms;
  sample.latency_us = 2000;
  sample.status = status;
  if (status == Status::down) sample.error = ErrorClass::timeout;
  return sample;
}

std::vector<SeriesPoint> points_of(const std::vector<Series>& all, const std::string& metric) {
  std::vector<SeriesPoint> points;
  for (const Series& one : all) {
    if (one.metric == metric) points.insert(points.end(), one.points.begin(), one.points.end());
  }
  return points;
}

// Reads until the reader has nothing more, as the sender (to_ms INT64_MAX) or an export does.
std::vector<ProbeSpan> read_all(const Store& store, int64_t after_ms, int64_t to_ms,
                                size_t max_samples, size_t hold_back) {
  const SpanReader reader(store);
  const StoredComponent probe = store.components().at(0);
  std::vector<ProbeSpan> spans;
  for (int guard = 0; guard < 10'000; ++guard) {
    ProbeSpan span = reader.read(probe, after_ms, to_ms, max_samples, hold_back, false);
    if (span.next_after_ms == span.after_ms) return spans;
    after_ms = span.next_after_ms;
    spans.push_back(std::move(span));
  }
  ADD_FAILURE() << "the reader never stopped";
  return spans;
}

size_t sample_count(const std::vector<ProbeSpan>& spans) {
  size_t count = 0;
  for (const ProbeSpan& span : spans) count += span.samples.size();
  return count;
}

// A 1 s probe whose every minute ends on a sample sent at its last millisecond (…:59.999): a
// cursor there once read nothing from its own minute and never moved on.
TEST(SpanReader, ACursorOnAMinutesLastMillisecondMovesOn) {
  test::TempDir dir;
  {
    Store store(dir.file("blip.db"), Store::Mode::read_write);
    const int64_t id = store.register_probe(probe_named("web", 1000));
    for (int64_t k = 0; k < 5 * 60; ++k) store.add_sample(id, sample_at(F + 999 + k * kSecond));
    store.flush(F + 5 * kMinute);
  }
  Store store(dir.file("blip.db"), Store::Mode::read_only);
  // A minute of samples at a time, as when a request has room for little more.
  const auto spans = read_all(store, INT64_MIN, INT64_MAX, 60, 0);
  EXPECT_EQ(sample_count(spans), 300U);
  // The sender's way: holding back unsettled samples it still reaches all but those.
  EXPECT_EQ(sample_count(read_all(store, INT64_MIN, INT64_MAX, 60, 3)), 297U);
  // From a cursor on the first minute's last sample.
  const auto later = read_all(store, F + kMinute - 1, INT64_MAX, 60, 0);
  ASSERT_FALSE(later.empty());
  EXPECT_EQ(later.front().samples.front().sent_ms, F + kMinute + 999);
  EXPECT_EQ(sample_count(later), 240U);
}

// An export's range read in chunks: every sample once, every minute's count once (the last
// minute too), and an outage's end after the last sample of the range.
TEST(SpanReader, ARangeReadInChunksIsClosedByItsLastSpan) {
  test::TempDir dir;
  {
    Store store(dir.file("blip.db"), Store::Mode::read_write);
    const int64_t id = store.register_probe(probe_named("web", 1000));
    for (int64_t k = 0; k < 4 * 60; ++k) {
      const bool down = k >= 150 && k < 180;
      store.add_sample(id, sample_at(F + k * kSecond, down ? Status::down : Status::up));
    }
    OutageRow row;
    row.id = 1;
    row.probe_id = id;
    row.start_ms = F + 150 * kSecond;
    row.end_ms = F + 179 * kSecond + 500;  // the answer after the range's last sample
    row.error = ErrorClass::timeout;
    row.down_samples = 30;
    row.end_reason = "recovered";
    store.write_outage(row);
    store.flush(F + 4 * kMinute);
  }
  Store store(dir.file("blip.db"), Store::Mode::read_only);
  const int64_t to_ms = F + 179 * kSecond + 800;  // the range: [F, F + 2m59.8s)
  for (size_t chunk : {60U, 120U, 10'000U}) {
    SCOPED_TRACE(chunk);
    const auto spans = read_all(store, F - 1, to_ms, chunk, 0);
    ASSERT_FALSE(spans.empty());
    EXPECT_EQ(spans.back().next_after_ms, to_ms - 1);
    std::vector<int64_t> sent;
    std::vector<Series> series;
    for (const ProbeSpan& span : spans) {
      for (const Sample& sample : span.samples) sent.push_back(sample.sent_ms);
      append_probe_series(span, "a", series);
    }
    ASSERT_EQ(sent.size(), 180U);
    for (size_t i = 0; i < sent.size(); ++i)
      EXPECT_EQ(sent[i], F + static_cast<int64_t>(i) * kSecond);
    const auto minutes = points_of(series, "blip_minute_samples");
    ASSERT_EQ(minutes.size(), 3U);
    for (size_t i = 0; i < minutes.size(); ++i) {
      EXPECT_EQ(minutes[i].ms, F + static_cast<int64_t>(i + 1) * kMinute);
      EXPECT_EQ(minutes[i].value, 60);
    }
    const auto outage = points_of(series, "blip_outage");
    ASSERT_EQ(outage.size(), 31U);  // 30 samples inside, then its end
    EXPECT_EQ(outage.front().ms, F + 150 * kSecond);
    EXPECT_EQ(outage.back().ms, F + 179 * kSecond + 500);
    EXPECT_EQ(outage.back().value, 0);
    EXPECT_EQ(points_of(series, "blip_sample_up").size(), 180U);
  }
  // The sender's way over the same store, a minute at a time (a request nearly full): every
  // sample, though each minute's samples end before its last millisecond.
  EXPECT_EQ(sample_count(read_all(store, INT64_MIN, INT64_MAX, 60, 0)), 240U);
  // A range after the last sample: one span closes it, with nothing in it.
  const auto after = read_all(store, F + 10 * kMinute - 1, F + 20 * kMinute, 60, 0);
  ASSERT_EQ(after.size(), 1U);
  EXPECT_EQ(after[0].next_after_ms, F + 20 * kMinute - 1);
  EXPECT_TRUE(after[0].samples.empty());
  EXPECT_TRUE(after[0].minutes.empty());
  EXPECT_TRUE(after[0].outages.empty());
  // A range starting on a minute boundary takes no count of the minute before it.
  std::vector<Series> later;
  for (const ProbeSpan& span : read_all(store, F + kMinute - 1, F + 2 * kMinute, 60, 0))
    append_probe_series(span, "a", later);
  const auto minutes = points_of(later, "blip_minute_samples");
  ASSERT_EQ(minutes.size(), 1U);
  EXPECT_EQ(minutes[0].ms, F + 2 * kMinute);
}

// blip_hour_samples: at the end of each hour whose every minute holds samples, their total,
// whichever span ships the hour's last minute (its earlier minutes read from the store); none
// for an hour with a minute without samples.
TEST(SpanReader, AnHourWithEveryMinuteIsShippedAtItsEnd) {
  constexpr int64_t kHour = 60 * kMinute;
  test::TempDir dir;
  {
    Store store(dir.file("blip.db"), Store::Mode::read_write);
    const int64_t id = store.register_probe(probe_named("web", 10'000));
    for (int64_t ms = F; ms < F + 3 * kHour + 5 * kMinute; ms += 10 * kSecond) {
      // No sample in the second hour's minute 17.
      if (ms >= F + kHour + 17 * kMinute && ms < F + kHour + 18 * kMinute) continue;
      store.add_sample(id, sample_at(ms));
    }
    store.flush(F + 4 * kHour);
  }
  Store store(dir.file("blip.db"), Store::Mode::read_only);
  for (size_t chunk : {6U, 60U, 100'000U}) {
    SCOPED_TRACE(chunk);
    std::vector<Series> series;
    for (const ProbeSpan& span : read_all(store, INT64_MIN, INT64_MAX, chunk, 2))
      append_probe_series(span, "a", series);
    const auto hours = points_of(series, "blip_hour_samples");
    ASSERT_EQ(hours.size(), 2U);
    EXPECT_EQ(hours[0].ms, F + kHour);
    EXPECT_EQ(hours[0].value, 360);
    EXPECT_EQ(hours[1].ms, F + 3 * kHour);
    EXPECT_EQ(hours[1].value, 360);
  }
  // A cursor in the middle of the third hour: its point all the same, from the store.
  std::vector<Series> later;
  for (const ProbeSpan& span : read_all(store, F + 2 * kHour + 30 * kMinute, INT64_MAX, 60, 2))
    append_probe_series(span, "a", later);
  const auto hours = points_of(later, "blip_hour_samples");
  ASSERT_EQ(hours.size(), 1U);
  EXPECT_EQ(hours[0].ms, F + 3 * kHour);
  EXPECT_EQ(hours[0].value, 360);
  EXPECT_NE(openmetrics_text(later).find("# TYPE blip_hour_samples gauge\n"
                                         "blip_hour_samples{probe=\"web\",type=\"tcp\",vantage="
                                         "\"a\"} 360 1795575600.000\n"),
            std::string::npos)
      << openmetrics_text(later);
}

// store_dropped windows one after another: blind throughout, 0 only at the last one's end.
TEST(BlindSeries, AWindowStartingWhereTheLastEndedStaysBlind) {
  std::vector<Series> series;
  append_blind_series({{F, F + 30 * kSecond, "store_dropped"},
                       {F + 30 * kSecond, F + 40 * kSecond, "store_dropped"},
                       {F + 10 * kSecond, F + 20 * kSecond, "loop_stall"}},
                      "a", series);
  const Series* dropped = nullptr;
  for (const Series& one : series) {
    if (one.labels.front().second == "store_dropped") dropped = &one;
  }
  ASSERT_NE(dropped, nullptr);
  ASSERT_EQ(dropped->points.size(), 3U);
  EXPECT_EQ(dropped->points[0].value, 1);
  EXPECT_EQ(dropped->points[1].ms, F + 30 * kSecond);
  EXPECT_EQ(dropped->points[1].value, 1);
  EXPECT_EQ(dropped->points[2].ms, F + 40 * kSecond);
  EXPECT_EQ(dropped->points[2].value, 0);
  EXPECT_EQ(series.size(), 2U);
  const std::string text = openmetrics_text(series);
  EXPECT_NE(text.find("# TYPE blip_blind gauge\n"
                      "blip_blind{reason=\"loop_stall\",vantage=\"a\"} 1 1795564810.000\n"),
            std::string::npos)
      << text;
  EXPECT_TRUE(
      text.ends_with("blip_blind{reason=\"store_dropped\",vantage=\"a\"} 0 "
                     "1795564840.000\n# EOF\n"))
      << text;
}

}  // namespace
}  // namespace blip

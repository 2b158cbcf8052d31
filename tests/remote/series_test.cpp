#include "blip/remote/series.hpp"

#include <gtest/gtest.h>
#include <snappy.h>

#include <algorithm>
#include <climits>

#include "blip/remote/remote_write.hpp"
#include "support/process.hpp"

namespace blip {
namespace {

constexpr int64_t kT0 = 1'800'000'000'000;  // a minute's start
constexpr int64_t kEvery = 250;

class SeriesTest : public ::testing::Test {
 protected:
  SeriesTest() : store_(dir_.path() + "/blip.db", Store::Mode::read_write) {
    ProbeConfig probe;
    probe.name = "web";
    probe.type = "http";
    probe.target_display = "http://127.0.0.1/";
    probe.interval_ms = kEvery;
    probe.confirm = 2;
    id_ = store_.register_probe(probe);
  }

  // Samples every 250 ms from `from_ms`, down where `down(i)`.
  void store_samples(int64_t from_ms, int count, bool down = false) {
    for (int i = 0; i < count; ++i) {
      Sample sample;
      sample.sent_ms = from_ms + i * kEvery;
      sample.latency_us = 2'000;
      if (down) {
        sample.status = Status::down;
        sample.error = ErrorClass::timeout;
        sample.latency_us = 1'000'000;
      }
      store_.add_sample(id_, sample);
    }
    store_.flush(from_ms + count * kEvery);
  }

  StoredComponent web() const { return store_.components().at(0); }

  ProbeSpan read(int64_t after_ms, size_t hold_back = 0, size_t max_samples = 100'000) const {
    return SpanReader(store_).read(web(), after_ms, INT64_MAX, max_samples, hold_back, false);
  }

  static const Series* find(const std::vector<Series>& series, const std::string& metric) {
    auto it = std::find_if(series.begin(), series.end(),
                           [&](const Series& one) { return one.metric == metric; });
    return it == series.end() ? nullptr : &*it;
  }

  test::TempDir dir_;
  Store store_;
  int64_t id_ = 0;
};

TEST_F(SeriesTest, HoldsBackTheLastSamplesUntilLaterOnesAreStored) {
  store_samples(kT0, 10);
  EXPECT_EQ(settle_samples(web()), 3u);  // confirm 2, and one more
  ProbeSpan first = read(INT64_MIN, 3);
  ASSERT_EQ(first.samples.size(), 7u);
  EXPECT_EQ(first.next_after_ms, kT0 + 6 * kEvery);
  // Nothing new: the position stays where it was.
  EXPECT_EQ(read(first.next_after_ms, 3).next_after_ms, first.next_after_ms);
  store_samples(kT0 + 10 * kEvery, 5);
  ProbeSpan second = read(first.next_after_ms, 3);
  ASSERT_EQ(second.samples.size(), 5u);
  EXPECT_EQ(second.samples.front().sent_ms, kT0 + 7 * kEvery);
  EXPECT_EQ(second.next_after_ms, kT0 + 11 * kEvery);
}

TEST_F(SeriesTest, MovesPastEmptyMinutesOnlyOnceSomethingLaterIsStored) {
  store_samples(kT0, 4);
  // A one-minute chunk at a time (240 samples a minute at 250 ms).
  ProbeSpan span = read(INT64_MIN, 0, 240);
  ASSERT_EQ(span.next_after_ms, kT0 + 3 * kEvery);
  // Nothing after it yet: never a position beyond what is stored (later samples would be lost).
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(read(span.next_after_ms, 0, 240).next_after_ms, span.next_after_ms);
  // Ten minutes later blip probes again: the empty minutes are passed, nothing is skipped.
  const int64_t later_ms = kT0 + 10 * 60'000;
  store_samples(later_ms, 4);
  int64_t position = span.next_after_ms;
  std::vector<int64_t> seen;
  for (int round = 0; round < 20 && position < later_ms + 3 * kEvery; ++round) {
    ProbeSpan next = read(position, 0, 240);
    ASSERT_GE(next.next_after_ms, position);
    for (const Sample& sample : next.samples) seen.push_back(sample.sent_ms);
    position = next.next_after_ms;
  }
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen.front(), later_ms);
  EXPECT_EQ(position, later_ms + 3 * kEvery);
}

TEST_F(SeriesTest, OutageIsOneAtEachSampleInsideAndZeroOnceAtItsEnd) {
  store_samples(kT0, 8);                              // up
  store_samples(kT0 + 8 * kEvery, 8, /*down=*/true);  // down from 2.0 s
  store_samples(kT0 + 16 * kEvery, 8);                // up again
  OutageRow outage;
  outage.id = 1;
  outage.probe_id = id_;
  outage.start_ms = kT0 + 8 * kEvery;
  outage.end_ms = kT0 + 16 * kEvery + 2;  // the first up sample's answer
  outage.error = ErrorClass::timeout;
  outage.down_samples = 8;
  outage.end_reason = "recovered";
  store_.write_outage(outage);
  store_.flush(kT0 + 30 * kEvery);

  // Two spans that split at the recovering sample: its 0 (2 ms after it) comes in the second.
  ProbeSpan first = read(INT64_MIN, 7);
  ASSERT_EQ(first.next_after_ms, kT0 + 16 * kEvery);
  ProbeSpan second = read(first.next_after_ms, 0);
  std::vector<Series> series;
  append_probe_series(first, "a", series);
  append_probe_series(second, "a", series);
  std::vector<SeriesPoint> outage_points;
  for (const Series& one : series) {
    if (one.metric != "blip_outage") continue;
    EXPECT_EQ(one.labels, (std::vector<std::pair<std::string, std::string>>{
                              {"probe", "web"}, {"type", "http"}, {"vantage", "a"}}));
    outage_points.insert(outage_points.end(), one.points.begin(), one.points.end());
  }
  // The recovering sample was sent inside the outage (it ends when its answer came).
  ASSERT_EQ(outage_points.size(), 10u);
  for (int i = 0; i < 9; ++i) {
    EXPECT_EQ(outage_points[static_cast<size_t>(i)].ms, kT0 + (8 + i) * kEvery);
    EXPECT_EQ(outage_points[static_cast<size_t>(i)].value, 1.0);
  }
  EXPECT_EQ(outage_points.back().ms, *outage.end_ms);
  EXPECT_EQ(outage_points.back().value, 0.0);

  const Series* up = find(series, "blip_sample_up");
  ASSERT_NE(up, nullptr);
  ASSERT_EQ(up->points.size(), 17u);  // the first span's
  EXPECT_EQ(up->points[7].value, 1.0);
  EXPECT_EQ(up->points[8].value, 0.0);
  EXPECT_EQ(up->points[16].value, 1.0);
  const Series* duration = find(series, "blip_sample_duration_seconds");
  ASSERT_NE(duration, nullptr);
  EXPECT_DOUBLE_EQ(duration->points[8].value, 1.0);
}

TEST_F(SeriesTest, MinuteSamplesAtEachMinutesEndOnceTheMinuteIsPassed) {
  store_samples(kT0, 240);           // minute 0: full
  store_samples(kT0 + 60'000, 100);  // minute 1: part
  ProbeSpan span = read(INT64_MIN, 0);
  std::vector<Series> series;
  append_probe_series(span, "a", series);
  const Series* minutes = find(series, "blip_minute_samples");
  ASSERT_NE(minutes, nullptr);
  ASSERT_EQ(minutes->points.size(), 1u);  // minute 1 is not passed yet
  EXPECT_EQ(minutes->points[0].ms, kT0 + 60'000);
  EXPECT_EQ(minutes->points[0].value, 240.0);
  store_samples(kT0 + 120'000, 1);
  series.clear();
  append_probe_series(read(span.next_after_ms, 0), "a", series);
  minutes = find(series, "blip_minute_samples");
  ASSERT_NE(minutes, nullptr);
  ASSERT_EQ(minutes->points.size(), 1u);
  EXPECT_EQ(minutes->points[0].ms, kT0 + 120'000);
  EXPECT_EQ(minutes->points[0].value, 100.0);
}

TEST(BlindSeries, OneInsideEachWindowEveryMinuteAndZeroAtItsEnd) {
  std::vector<Series> series;
  append_blind_series({{kT0, kT0 + 150'000, "not_running"}, {kT0 + 10, kT0 + 500, "loop_stall"}},
                      "b", series);
  ASSERT_EQ(series.size(), 2u);
  const Series& stall = series[0].labels[0].second == "loop_stall" ? series[0] : series[1];
  const Series& stopped = &stall == &series[0] ? series[1] : series[0];
  EXPECT_EQ(stopped.labels, (std::vector<std::pair<std::string, std::string>>{
                                {"reason", "not_running"}, {"vantage", "b"}}));
  ASSERT_EQ(stopped.points.size(), 4u);
  EXPECT_EQ(stopped.points[1].ms, kT0 + 60'000);
  EXPECT_EQ(stopped.points[3].ms, kT0 + 150'000);
  EXPECT_EQ(stopped.points[3].value, 0.0);
  EXPECT_EQ(stall.points.size(), 2u);
}

TEST(RemoteWrite, BodyDecodesToTheSameSeriesAndGarbageIsRefused) {
  std::vector<Series> series{
      {"blip_sample_up",
       {{"probe", "web"}, {"type", "http"}, {"vantage", "a"}},
       {{kT0, 1}, {kT0 + 250, 0}}},
      {"blip_blind", {{"reason", "loop_stall"}, {"vantage", "a"}}, {{kT0, 1}}}};
  const std::string body = encode_write_request(series);
  const std::vector<Series> back = decode_write_request(body);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].metric, "blip_sample_up");
  EXPECT_EQ(back[0].labels, series[0].labels);
  ASSERT_EQ(back[0].points.size(), 2u);
  EXPECT_EQ(back[0].points[1].ms, kT0 + 250);
  EXPECT_EQ(back[0].points[1].value, 0.0);
  EXPECT_EQ(back[1].labels, series[1].labels);
  EXPECT_THROW(decode_write_request("not snappy at all"), std::runtime_error);
}

TEST(RemoteWrite, BodyIsTheBytesProtobufWouldWrite) {
  // What protobuf-lite's SerializeAsString made of this WriteRequest: defaults (an empty label
  // value, a 0 value, a 0 timestamp) left out, -0.0 kept, a negative timestamp in ten bytes.
  const std::vector<Series> series{{"blip_outage",
                                    {{"probe", ""}, {"vantage", "a"}},
                                    {{kT0, 1}, {kT0 + 250, 0.0}, {0, -0.0}, {-1, 0.25}}}};
  const std::string expected(
      "\x0a\x6c\x0a\x17\x0a\x08\x5f\x5f\x6e\x61\x6d\x65\x5f\x5f\x12\x0b"
      "\x62\x6c\x69\x70\x5f\x6f\x75\x74\x61\x67\x65\x0a\x07\x0a\x05\x70"
      "\x72\x6f\x62\x65\x0a\x0c\x0a\x07\x76\x61\x6e\x74\x61\x67\x65\x12"
      "\x01\x61\x12\x10\x09\x00\x00\x00\x00\x00\x00\xf0\x3f\x10\x80\xa0"
      "\xf1\xc2\xb1\x34\x12\x07\x10\xfa\xa1\xf1\xc2\xb1\x34\x12\x09\x09"
      "\x00\x00\x00\x00\x00\x00\x00\x80\x12\x14\x09\x00\x00\x00\x00\x00"
      "\x00\xd0\x3f\x10\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
      110);
  std::string plain;
  const std::string body = encode_write_request(series);
  ASSERT_TRUE(snappy::Uncompress(body.data(), body.size(), &plain));
  EXPECT_EQ(plain, expected);
  // A sender's encoder gives the same body again with its buffers reused.
  WriteRequestEncoder encoder;
  encoder.encode({{"blip_blind", {{"reason", "loop_stall"}}, {{kT0, 1}}}});
  EXPECT_EQ(encoder.encode(series), body);
}

TEST(EndpointLabel, KeepsNoCredentialsOrQuery) {
  const std::string with_query =
      endpoint_label("https://user:s3cret@mimir.example:443/api/v1/push?token=x#f");
  EXPECT_EQ(with_query.substr(0, with_query.find('?')), "https://mimir.example:443/api/v1/push");
  EXPECT_EQ(with_query.find("token"), std::string::npos);
  // Endpoints that differ only in their query keep cursors of their own.
  EXPECT_NE(with_query, endpoint_label("https://mimir.example:443/api/v1/push?token=y"));
  EXPECT_EQ(with_query, endpoint_label("https://mimir.example:443/api/v1/push?token=x"));
  EXPECT_EQ(endpoint_label("http://127.0.0.1:8428/api/v1/write"),
            "http://127.0.0.1:8428/api/v1/write");
  EXPECT_EQ(endpoint_label("http://host"), "http://host");
}

TEST(OpenMetrics, FamiliesOnceEachInOrderWithSecondTimestampsAndAnEnd) {
  std::vector<Series> series{
      {"blip_outage", {{"probe", "w\"eb"}, {"type", "http"}, {"vantage", "a"}}, {{kT0 + 5, 1}}},
      {"blip_sample_up", {{"probe", "db"}, {"type", "postgres"}, {"vantage", "a"}}, {{kT0, 1}}},
      {"blip_sample_up", {{"probe", "web"}, {"type", "http"}, {"vantage", "a"}}, {{kT0 + 250, 0}}}};
  const std::string text = openmetrics_text(series);
  EXPECT_EQ(text,
            "# HELP blip_sample_up 1 when a sample was up or degraded, 0 when down\n"
            "# TYPE blip_sample_up gauge\n"
            "blip_sample_up{probe=\"db\",type=\"postgres\",vantage=\"a\"} 1 1800000000.000\n"
            "blip_sample_up{probe=\"web\",type=\"http\",vantage=\"a\"} 0 1800000000.250\n"
            "# HELP blip_outage 1 at each sample inside an outage, 0 at its end\n"
            "# TYPE blip_outage gauge\n"
            "blip_outage{probe=\"w\\\"eb\",type=\"http\",vantage=\"a\"} 1 1800000000.005\n"
            "# EOF\n");
}

}  // namespace
}  // namespace blip

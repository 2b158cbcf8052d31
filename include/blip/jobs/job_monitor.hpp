#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "blip/analysis/run_trend.hpp"
#include "blip/config/config.hpp"
#include "blip/core/cron.hpp"
#include "blip/core/loop.hpp"
#include "blip/core/sample.hpp"
#include "blip/recorder/live_state.hpp"
#include "blip/store/rows.hpp"

namespace blip {

// One check-in of a job, as the feed's listener received it.
struct JobPing {
  enum class Kind { start, end } kind = Kind::end;
  std::optional<int> exit_status;  // an end: 0 success, else its status; none for a plain /fail
  bool failed = false;
  std::string rid;                     // pairs a start with its end when runs overlap
  std::string output;                  // an end's body: the last lines of the job's output, cleaned
  std::optional<int64_t> duration_ms;  // as the wrapper measured it (used when blip saw no start)
  int64_t received_ms = 0;
};

// Watches the jobs (`[[job]]`): applies their pings, and
// once a second turns each job's state into a sample, so late, overrunning
// and failed runs become outages through the same recorder as probes' down
// samples. A state's first down sample is stamped with the moment it began
// (schedule + grace, start + max_run, the failing end), not with the tick
// that noticed it. A job is
//   running      while a run it started has not ended (within max_run),
//   overrunning  once a run has taken longer than max_run,
//   failed       from a run's non-zero end until a run ends with 0,
//   late         when no run started by its expected start plus grace,
//   up           otherwise.
// Runs are written through the sink as they start and end.
class JobMonitor {
 public:
  using SampleSink = std::function<void(size_t index, const Sample&)>;

  JobMonitor(uv_loop_t* loop, RecordSink& runs, int64_t last_run_id, SampleSink samples);
  // Told when, after a run ends, the trend of a job's durations says a run will
  // exceed max_run within kForecastHorizonMs (once, until that stops being so).
  using ForecastSink = std::function<void(size_t index, const std::string& text)>;
  void set_forecast_sink(ForecastSink sink) { forecast_ = std::move(sink); }
  static constexpr int64_t kForecastHorizonMs = 14 * 86'400'000LL;
  // `index` is the job's index in the recorder; `history` its recent runs from
  // the store, newest first (the last start, open runs and the last failure
  // carry over a restart); `watching_since_ms` when blip began to watch it.
  void add(size_t index, const JobConfig& config, int64_t probe_id,
           const std::vector<JobRunRow>& history, int64_t watching_since_ms);
  void remove(size_t index);
  void ping(size_t index, const JobPing& ping);
  std::optional<JobLiveState> live(size_t index, int64_t now_ms) const;
  // The evaluation timer: once a second, each job's sample.
  void start();
  void stop();
  // Evaluates every job at `now_ms` (the timer calls it; tests may too).
  void evaluate(int64_t now_ms);

 private:
  struct Job {
    const JobConfig* config;
    std::optional<CronSchedule> schedule;
    int64_t probe_id = 0;
    int64_t watching_since_ms = 0;
    std::optional<int64_t> last_start_ms;
    std::optional<int64_t> last_end_ms;
    std::vector<JobRunRow> open_runs;  // by start
    std::optional<JobRunRow> last_run;
    std::optional<int64_t> failed_since_ms;  // latched until a run ends with 0
    int64_t last_sample_ms = 0;
    Status last_status = Status::up;
    std::vector<RunPoint> finished;  // the last kTrendRuns with both ends, oldest first
    bool forecast_told = false;
  };
  struct Verdict {
    Status status = Status::up;
    ErrorClass error = ErrorClass::none;
    std::string detail;
    int64_t since_ms = 0;  // when a down state began
    std::string state;
  };
  Verdict judge(const Job& job, int64_t now_ms) const;
  // The time after which a start is late; 0 when none is expected.
  int64_t due_ms(const Job& job) const;
  void emit(size_t index, Job& job, int64_t now_ms);
  void forecast(size_t index, Job& job, int64_t now_ms);

  RecordSink& runs_;
  int64_t next_run_id_;
  SampleSink samples_;
  ForecastSink forecast_;
  std::map<size_t, Job> jobs_;
  Timer tick_;
};

// Opens more than this per job are dropped from the watch, oldest first (a
// job that only ever sends starts must not grow blip without bound).
inline constexpr size_t kMaxOpenRuns = 100;
// Output kept with a run: the last 10 KiB.
inline constexpr size_t kMaxRunOutputBytes = 10 * 1024;
// Appends `data` to a job's output as it streams in, keeping only (about) its last
// kMaxRunOutputBytes.
void keep_output_tail(std::string& tail, std::string_view data);
// A job's output made safe to store and show, keeping its last lines within kMaxRunOutputBytes.
std::string clean_run_output(std::string_view output);

}  // namespace blip

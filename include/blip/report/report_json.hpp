#pragma once
#include <iosfwd>
#include <nlohmann/json.hpp>

#include "blip/report/report.hpp"

// The report's JSON fields, shared by `blip report --format json` and the
// feed's summary.json, so both spell them the same way.

namespace blip {

nlohmann::json outage_json(const OutageRecord& outage, const Report& report);
// `with_candidates` adds every period tested (the report's evidence; large).
nlohmann::json pattern_json(const PatternResult& pattern, bool with_candidates = true);
nlohmann::json summary_json(const ProbeSummary& summary);
nlohmann::json blind_window_json(const BlindWindow& window);
nlohmann::json job_json(const JobSummary& job);
// The whole report, as `blip report --format json` prints it.
nlohmann::json report_json(const Report& report);
// Writes report_json(report).dump(2) without building the document first.
void write_report_json(std::ostream& out, const Report& report);

}  // namespace blip

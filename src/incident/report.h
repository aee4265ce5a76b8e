#pragma once

// The readable report of an incident: what a security team hands to management and what a
// customer's meeting starts from. One content, two renderings:
//
// - Markdown (GitHub-flavoured tables): a header (id, title, status, windows, indicators,
//   notes), the scope summary (potential and confirmed counts and a table of every tenant of
//   the potential scope: views, attempts, refusals, successes, grants used, confirmed), a
//   timeline picture, and per confirmed tenant a table of its timeline.
// - HTML: a small self-contained page (inline CSS, no scripts, no external resources) with the
//   same content.
//
// The picture is an inline SVG: one lane per operator device and session (the compromised
// workstation's activity on its own lanes), time left to right over the compromise window (or
// the window when nothing is confirmed), a mark per event: circles for views, squares for
// guarded-action attempts, crosses for refusals; each mark's <title> says what it was. Lanes are
// capped (kMaxTimelineLanes); the picture says how many were left out.
//
// Everything that comes from data (tenant names, titles, ids, reasons, fields) is escaped for
// the context it lands in: Markdown text and tables, HTML text, SVG text and attributes.
//
// Thread-safe (no state).

#include <string>
#include <string_view>

#include "incident/scope.h"
#include "store/records.h"

namespace custos::incident {

enum class ReportFormat { kMarkdown, kHtml };

inline constexpr int kMaxTimelineLanes = 40;

// `scope` is null for an incident that was not scoped yet: the report is then the header.
std::string RenderReport(const store::IncidentRecord& incident, const ScopeResult* scope,
                         ReportFormat format);

// The timeline picture alone (see above): a complete <svg> element.
std::string TimelineSvg(const ScopeResult& scope);

}  // namespace custos::incident

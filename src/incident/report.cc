#include "incident/report.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "absl/time/time.h"
#include "common/html.h"
#include "common/json.h"
#include "common/time_format.h"

namespace custos::incident {
namespace {

// The report as blocks of plain text, rendered to Markdown or HTML; only the renderers know
// markup, so every piece of data is escaped exactly once, for the format it lands in.
struct Block {
  enum class Kind { kHeading, kParagraph, kFacts, kTable, kSvg };
  Kind kind = Kind::kParagraph;
  int level = 1;
  std::string text;
  std::vector<std::pair<std::string, std::string>> facts;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::string svg;  // already safe SVG markup
};

Block Heading(int level, std::string text) {
  return Block{.kind = Block::Kind::kHeading, .level = level, .text = std::move(text)};
}
Block Paragraph(std::string text) {
  return Block{.kind = Block::Kind::kParagraph, .text = std::move(text)};
}

std::string OneLine(std::string_view text) {
  std::string out(text);
  std::replace_if(
      out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r'; }, ' ');
  return out;
}

// Markdown text that renders as `text`: HTML's specials as references (Markdown passes HTML
// through), Markdown's own as backslash escapes, lines joined (a table row is one line).
std::string EscapeMarkdown(std::string_view text) {
  std::string out;
  for (char c : OneLine(text)) {
    switch (c) {
      case '\\':
      case '`':
      case '*':
      case '_':
      case '[':
      case ']':
      case '|':
      case '#':
      case '~':
        out += '\\';
        out += c;
        break;
      default:
        out += HtmlEscape(std::string_view(&c, 1));
    }
  }
  return out;
}

std::string Time(absl::Time t) { return FormatRfc3339(t); }

std::string WindowText(absl::Time start, absl::Time end) {
  return fmt::format("{} to {} ({})", Time(start), Time(end),
                     absl::FormatDuration(absl::Trunc(end - start, absl::Seconds(1))));
}

std::string ListOrNone(const std::vector<std::string>& items) {
  if (items.empty()) return "none";
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string YesNo(bool b) { return b ? "yes" : "no"; }

bool IsRefusal(const TimelineEntry& e) { return e.outcome == "DENY" || e.outcome == "FAILURE"; }
bool IsAttempt(const TimelineEntry& e) { return e.event_type.starts_with("support.action."); }

std::vector<Block> Content(const store::IncidentRecord& incident, const ScopeResult* scope) {
  std::vector<Block> blocks;
  blocks.push_back(Heading(1, fmt::format("Incident {}: {}", incident.id, incident.title)));
  Block facts{.kind = Block::Kind::kFacts};
  facts.facts = {
      {"Status", incident.status},
      {"Declared", fmt::format("{} by {}", Time(incident.created), incident.created_by)},
      {"Last change", Time(incident.updated)},
      {"Window", WindowText(incident.window_start, incident.window_end)},
      {"Compromise window", WindowText(incident.compromise_start, incident.compromise_end)}};
  absl::StatusOr<Json> parsed = ParseJson(incident.indicators_json);
  absl::StatusOr<Indicators> indicators =
      parsed.ok() ? Indicators::FromJson(*parsed) : absl::StatusOr<Indicators>(parsed.status());
  if (indicators.ok()) {
    facts.facts.emplace_back("Operators", ListOrNone(indicators->operator_ids));
    facts.facts.emplace_back("Vendors", ListOrNone(indicators->vendor_ids));
    facts.facts.emplace_back("Devices", ListOrNone(indicators->device_ids));
    facts.facts.emplace_back("Sessions", ListOrNone(indicators->session_ids));
    facts.facts.emplace_back("IP ranges", ListOrNone(indicators->ip_ranges));
  } else {
    facts.facts.emplace_back("Indicators", incident.indicators_json);
  }
  if (!incident.notes.empty()) facts.facts.emplace_back("Notes", incident.notes);
  blocks.push_back(std::move(facts));

  if (scope == nullptr) {
    blocks.push_back(Paragraph("Not scoped yet."));
    return blocks;
  }
  blocks.push_back(Heading(2, "Scope"));
  blocks.push_back(Paragraph(fmt::format(
      "Potential scope: {} tenant(s), every tenant the indicated principals reached from {}. "
      "Confirmed scope: {} tenant(s), reached by an indicated device, session or address from "
      "{}. {} activity rows examined in {:.0f} ms.",
      scope->potential, WindowText(scope->window.start, scope->window.end), scope->confirmed,
      WindowText(scope->compromise.start, scope->compromise.end), scope->rows_examined,
      absl::ToDoubleMilliseconds(scope->elapsed))));
  Block summary{.kind = Block::Kind::kTable};
  summary.header = {"Tenant",   "Confirmed", "Views",      "Attempts",
                    "Refusals", "Successes", "Grants used"};
  for (const TenantScope& t : scope->tenants) {
    summary.rows.push_back({t.tenant_name.empty() ? t.tenant_id.value() : t.tenant_name,
                            YesNo(t.confirmed), std::to_string(t.views), std::to_string(t.attempts),
                            std::to_string(t.refusals), std::to_string(t.successes),
                            fmt::format("{}", t.grants_used.size())});
  }
  if (!scope->tenants.empty()) blocks.push_back(std::move(summary));

  blocks.push_back(Heading(2, "Timeline"));
  blocks.push_back(Block{.kind = Block::Kind::kSvg, .svg = TimelineSvg(*scope)});

  blocks.push_back(Heading(2, "Confirmed tenants"));
  if (scope->confirmed == 0) {
    blocks.push_back(Paragraph("No tenant is in the confirmed scope."));
  }
  for (const TenantScope& t : scope->tenants) {
    if (!t.confirmed) continue;
    blocks.push_back(Heading(3, fmt::format("{} ({})", t.tenant_name, t.tenant_id.value())));
    blocks.push_back(Paragraph(
        fmt::format("{} views, {} attempts, {} refusals, {} successes; grants used: {}.", t.views,
                    t.attempts, t.refusals, t.successes, ListOrNone(t.grants_used))));
    Block table{.kind = Block::Kind::kTable};
    table.header = {"Time",    "Event", "Outcome",  "Reason", "Operator",     "Device",
                    "Session", "IP",    "Resource", "Fields", "In compromise"};
    for (const TimelineEntry& e : t.timeline) {
      table.rows.push_back({Time(e.time), e.event_type, e.outcome, e.reason, e.operator_id,
                            e.device_id, e.session_id, e.ip, e.resource, e.fields,
                            YesNo(e.confirmed)});
    }
    blocks.push_back(std::move(table));
  }
  return blocks;
}

std::string Markdown(const std::vector<Block>& blocks) {
  std::string out;
  for (const Block& b : blocks) {
    switch (b.kind) {
      case Block::Kind::kHeading:
        out += fmt::format("{} {}\n\n", std::string(b.level, '#'), EscapeMarkdown(b.text));
        break;
      case Block::Kind::kParagraph:
        out += EscapeMarkdown(b.text) + "\n\n";
        break;
      case Block::Kind::kFacts:
        for (const auto& [key, value] : b.facts) {
          out += fmt::format("- **{}:** {}\n", EscapeMarkdown(key), EscapeMarkdown(value));
        }
        out += "\n";
        break;
      case Block::Kind::kTable: {
        std::string head = "|", rule = "|";
        for (const std::string& h : b.header) {
          head += " " + EscapeMarkdown(h) + " |";
          rule += " --- |";
        }
        out += head + "\n" + rule + "\n";
        for (const auto& row : b.rows) {
          std::string line = "|";
          for (const std::string& cell : row) line += " " + EscapeMarkdown(cell) + " |";
          out += line + "\n";
        }
        out += "\n";
        break;
      }
      case Block::Kind::kSvg:
        // An HTML block: Markdown renderers that allow inline HTML show the picture.
        out += b.svg + "\n\n";
        break;
    }
  }
  return out;
}

constexpr std::string_view kStyle =
    "body{font-family:system-ui,sans-serif;margin:2em;color:#1b1b1b;max-width:80em}"
    "table{border-collapse:collapse;margin:1em 0;font-size:.9em}"
    "th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}dt{font-weight:bold;float:left;clear:left;width:11em}"
    "dd{margin-left:12em}svg{max-width:100%;height:auto}";

std::string Html(const std::vector<Block>& blocks, std::string_view title) {
  std::string out = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n",
      HtmlEscape(OneLine(title)), kStyle);
  for (const Block& b : blocks) {
    switch (b.kind) {
      case Block::Kind::kHeading:
        out += fmt::format("<h{0}>{1}</h{0}>\n", b.level, HtmlEscape(b.text));
        break;
      case Block::Kind::kParagraph:
        out += fmt::format("<p>{}</p>\n", HtmlEscape(b.text));
        break;
      case Block::Kind::kFacts:
        out += "<dl>\n";
        for (const auto& [key, value] : b.facts) {
          out += fmt::format("<dt>{}</dt><dd>{}</dd>\n", HtmlEscape(key), HtmlEscape(value));
        }
        out += "</dl>\n";
        break;
      case Block::Kind::kTable:
        out += "<table>\n<thead><tr>";
        for (const std::string& h : b.header) out += fmt::format("<th>{}</th>", HtmlEscape(h));
        out += "</tr></thead>\n<tbody>\n";
        for (const auto& row : b.rows) {
          out += "<tr>";
          for (const std::string& cell : row) out += fmt::format("<td>{}</td>", HtmlEscape(cell));
          out += "</tr>\n";
        }
        out += "</tbody>\n</table>\n";
        break;
      case Block::Kind::kSvg:
        out += "<figure>\n" + b.svg + "\n</figure>\n";
        break;
    }
  }
  out += "</body>\n</html>\n";
  return out;
}

// ---- The picture ----

constexpr double kWidth = 960;
constexpr double kLabelWidth = 230;
constexpr double kPlotRight = kWidth - 20;
constexpr double kTop = 40;
constexpr double kLaneHeight = 22;
constexpr int kTicks = 6;

struct Mark {
  const TimelineEntry* entry;
  const std::string* tenant;
};

std::string LaneName(const TimelineEntry& e) {
  return fmt::format("{} \u00b7 {}", e.device_id.empty() ? "no device" : e.device_id,
                     e.session_id.empty() ? "no session" : e.session_id);
}

std::string Shorten(const std::string& text, size_t max) {
  if (text.size() <= max) return text;
  size_t cut = max - 1;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  return text.substr(0, cut) + "\u2026";
}

std::string TickLabel(absl::Time t, absl::Duration span) {
  const char* format = span > absl::Hours(48)     ? "%m-%d %H:%M"
                       : span > absl::Minutes(10) ? "%H:%M"
                                                  : "%H:%M:%S";
  return absl::FormatTime(format, t, absl::UTCTimeZone());
}

}  // namespace

std::string TimelineSvg(const ScopeResult& scope) {
  // The compromise is the story when something is confirmed; else the whole window.
  const bool confirmed_only = scope.confirmed > 0;
  const Window range = confirmed_only ? scope.compromise : scope.window;
  std::vector<Mark> marks;
  for (const TenantScope& t : scope.tenants) {
    for (const TimelineEntry& e : t.timeline) {
      if ((!confirmed_only || e.confirmed) && e.time >= range.start && e.time < range.end) {
        marks.push_back({&e, &t.tenant_name});
      }
    }
  }
  std::stable_sort(marks.begin(), marks.end(),
                   [](const Mark& a, const Mark& b) { return a.entry->time < b.entry->time; });
  std::vector<std::string> lanes;  // in order of first activity
  std::map<std::string, int> lane_of;
  int hidden_lanes = 0;
  for (const Mark& m : marks) {
    const std::string name = LaneName(*m.entry);
    if (lane_of.contains(name)) continue;
    if (static_cast<int>(lanes.size()) < kMaxTimelineLanes) {
      lane_of[name] = static_cast<int>(lanes.size());
      lanes.push_back(name);
    } else {
      lane_of[name] = -1;
      ++hidden_lanes;
    }
  }

  const int lane_count = std::max<int>(1, static_cast<int>(lanes.size()));
  const double plot_bottom = kTop + lane_count * kLaneHeight;
  const double height = plot_bottom + 70;
  const double span_seconds = std::max(1.0, absl::ToDoubleSeconds(range.end - range.start));
  auto x_of = [&](absl::Time t) {
    return kLabelWidth +
           (kPlotRight - kLabelWidth) * absl::ToDoubleSeconds(t - range.start) / span_seconds;
  };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" height=\"{1:.0f}\" "
      "viewBox=\"0 0 {0:.0f} {1:.0f}\" font-family=\"sans-serif\" font-size=\"11\" role=\"img\">\n",
      kWidth, height);
  svg += fmt::format(
      "<title>{}</title>\n",
      HtmlEscape(fmt::format("Support activity {} {} to {}",
                             confirmed_only ? "in the compromise window" : "in the window",
                             FormatRfc3339(range.start), FormatRfc3339(range.end))));
  svg += fmt::format("<text x=\"10\" y=\"18\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
                     HtmlEscape(confirmed_only ? "Compromise window: confirmed activity"
                                               : "Window: all activity in scope"));
  // Time axis with ticks.
  const absl::Duration span = range.end - range.start;
  for (int i = 0; i <= kTicks; ++i) {
    const absl::Time t = range.start + span * i / kTicks;
    const double x = x_of(t);
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\" fill=\"#555\">{4}</text>\n",
        x, kTop - 6, plot_bottom, plot_bottom + 14, HtmlEscape(TickLabel(t, span)));
  }
  for (size_t i = 0; i < lanes.size(); ++i) {
    const double y = kTop + (static_cast<double>(i) + 0.5) * kLaneHeight;
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{2:.1f}\" y2=\"{1:.1f}\" stroke=\"#eee\"/>\n"
        "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        kLabelWidth, y, kPlotRight, kLabelWidth - 8, y + 4, HtmlEscape(Shorten(lanes[i], 36)));
  }
  if (marks.empty()) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#555\">No activity.</text>\n",
                       kLabelWidth + 10, kTop + kLaneHeight * 0.5 + 4);
  }
  for (const Mark& m : marks) {
    const TimelineEntry& e = *m.entry;
    const int lane = lane_of[LaneName(e)];
    if (lane < 0) continue;
    const double x = x_of(e.time);
    const double y = kTop + (lane + 0.5) * kLaneHeight;
    std::string what = fmt::format("{} \u00b7 {} \u00b7 {} {}", FormatRfc3339(e.time), *m.tenant,
                                   e.event_type, e.outcome);
    if (!e.reason.empty()) what += fmt::format(" ({})", e.reason);
    if (!e.resource.empty()) what += " \u00b7 " + e.resource;
    if (!e.fields.empty()) what += " \u00b7 fields: " + e.fields;
    std::string shape;
    if (IsRefusal(e)) {
      shape = fmt::format(
          "<path d=\"M{0:.1f} {1:.1f}l8 8m0 -8l-8 8\" stroke=\"#c62828\" stroke-width=\"2.5\"/>",
          x - 4, y - 4);
    } else if (IsAttempt(e)) {
      shape = fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"8\" height=\"8\" "
          "fill=\"#ef6c00\"/>",
          x - 4, y - 4);
    } else if (e.event_type == "support.view") {
      shape = fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"4.5\" fill=\"#1565c0\"/>", x, y);
    } else {
      shape = fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"#9e9e9e\"/>", x, y);
    }
    svg += fmt::format("<g><title>{}</title>{}</g>\n", HtmlEscape(what), shape);
  }
  // Legend.
  const double ly = plot_bottom + 40;
  svg += fmt::format(
      "<circle cx=\"{0:.1f}\" cy=\"{1:.1f}\" r=\"4.5\" fill=\"#1565c0\"/>"
      "<text x=\"{2:.1f}\" y=\"{3:.1f}\">view</text>\n"
      "<rect x=\"{4:.1f}\" y=\"{5:.1f}\" width=\"8\" height=\"8\" fill=\"#ef6c00\"/>"
      "<text x=\"{6:.1f}\" y=\"{3:.1f}\">guarded action attempted</text>\n"
      "<path d=\"M{7:.1f} {5:.1f}l8 8m0 -8l-8 8\" stroke=\"#c62828\" stroke-width=\"2.5\"/>"
      "<text x=\"{8:.1f}\" y=\"{3:.1f}\">refused</text>\n"
      "<circle cx=\"{9:.1f}\" cy=\"{1:.1f}\" r=\"3\" fill=\"#9e9e9e\"/>"
      "<text x=\"{10:.1f}\" y=\"{3:.1f}\">other</text>\n",
      kLabelWidth + 4, ly, kLabelWidth + 14, ly + 4, kLabelWidth + 70, ly - 4, kLabelWidth + 84,
      kLabelWidth + 250, kLabelWidth + 264, kLabelWidth + 330, kLabelWidth + 340);
  if (hidden_lanes > 0) {
    svg += fmt::format(
        "<text x=\"10\" y=\"{:.1f}\" fill=\"#555\">{}</text>\n", ly + 20,
        HtmlEscape(fmt::format("{} more device/session lanes not drawn", hidden_lanes)));
  }
  svg += "</svg>";
  return svg;
}

std::string RenderReport(const store::IncidentRecord& incident, const ScopeResult* scope,
                         ReportFormat format) {
  std::vector<Block> blocks = Content(incident, scope);
  if (format == ReportFormat::kHtml) {
    return Html(blocks, fmt::format("Incident {}: {}", incident.id, incident.title));
  }
  return Markdown(blocks);
}

}  // namespace custos::incident

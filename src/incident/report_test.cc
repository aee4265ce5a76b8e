#include "incident/report.h"

#include <string>
#include <vector>

#include <fmt/format.h>

#include "common/html.h"
#include "common/time_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace custos::incident {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const absl::Time kT0 = absl::FromUnixSeconds(1'642'750'000);  // 2022-01-21

absl::Time At(int minutes) { return kT0 + absl::Minutes(minutes); }

size_t Count(const std::string& text, std::string_view what) {
  size_t n = 0;
  for (size_t pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + 1)) {
    ++n;
  }
  return n;
}

TimelineEntry Entry(int minute, std::string type, std::string outcome, bool confirmed,
                    std::string device = "dev-017", std::string session = "102s7") {
  std::string reason = outcome == "DENY" ? "scope_missing" : "";
  return TimelineEntry{.time = At(minute),
                       .event_type = std::move(type),
                       .outcome = std::move(outcome),
                       .reason = std::move(reason),
                       .operator_id = "00uana",
                       .vendor_id = "vndnorthwind",
                       .device_id = std::move(device),
                       .session_id = std::move(session),
                       .ip = "203.0.113.5",
                       .grant_id = "sgr1",
                       .resource = "users",
                       .fields = "profile.email (masked)",
                       .tenant_event_uuid = fmt::format("uuid-{}", minute),
                       .confirmed = confirmed};
}

store::IncidentRecord Incident() {
  return store::IncidentRecord{
      .id = "incREPORT",
      .title = "Workstation nw-017 taken over | contractor",
      .status = "SCOPED",
      .indicators_json = R"({"vendorIds":["vndnorthwind"],"deviceIds":["dev-017"]})",
      .window_start = At(-5 * 24 * 60),
      .window_end = At(60),
      .compromise_start = At(0),
      .compromise_end = At(25),
      .notes = "Reported by the contractor's SOC",
      .created = At(120),
      .updated = At(121),
      .created_by = "00Tsecops"};
}

// Acme and an evilly named tenant confirmed (views and refused resets by the taken-over
// device); globex only in the potential scope.
ScopeResult Scope() {
  ScopeResult scope{.window = {At(-5 * 24 * 60), At(60)}, .compromise = {At(0), At(25)}};
  TenantScope acme{.tenant_id = TenantId("00oacme"),
                   .tenant_name = "acme",
                   .confirmed = true,
                   .views = 2,
                   .attempts = 1,
                   .refusals = 1,
                   .successes = 2,
                   .grants_used = {"sgr1"}};
  acme.timeline = {Entry(-600, "support.view", "SUCCESS", false, "dev-003", "102s1"),
                   Entry(3, "support.view", "SUCCESS", true),
                   Entry(9, "support.action.password_reset", "DENY", true)};
  TenantScope evil{.tenant_id = TenantId("00oevil"),
                   .tenant_name = "Ev<il> & \"Co\"",
                   .confirmed = true,
                   .views = 1,
                   .successes = 1};
  evil.timeline = {Entry(12, "support.view", "SUCCESS", true)};
  TenantScope globex{
      .tenant_id = TenantId("00oglobex"), .tenant_name = "globex", .views = 1, .successes = 1};
  globex.timeline = {Entry(-2000, "support.view", "SUCCESS", false, "dev-009", "102s9")};
  scope.tenants = {acme, evil, globex};
  scope.potential = 3;
  scope.confirmed = 2;
  scope.rows_examined = 5;
  scope.elapsed = absl::Milliseconds(3);
  return scope;
}

TEST(ReportTest, MarkdownHasHeaderSummaryTimelineAndOneTablePerConfirmedTenant) {
  const ScopeResult scope = Scope();
  const std::string md = RenderReport(Incident(), &scope, ReportFormat::kMarkdown);

  EXPECT_THAT(md, StartsWith("# Incident incREPORT: Workstation nw-017 taken over \\| contractor"));
  EXPECT_THAT(md, HasSubstr("- **Status:** SCOPED"));
  EXPECT_THAT(md, HasSubstr("- **Compromise window:** 2022-01-21T07:26:40.000Z to "
                            "2022-01-21T07:51:40.000Z (25m)"));
  EXPECT_THAT(md, HasSubstr("- **Devices:** dev-017"));
  EXPECT_THAT(md, HasSubstr("- **Operators:** none"));
  EXPECT_THAT(md, HasSubstr("Potential scope: 3 tenant(s)"));
  EXPECT_THAT(md, HasSubstr("Confirmed scope: 2 tenant(s)"));
  // The summary table: every tenant of the potential scope.
  EXPECT_THAT(md, HasSubstr("| Tenant | Confirmed | Views | Attempts | Refusals | Successes | "
                            "Grants used |"));
  EXPECT_THAT(md, HasSubstr("| acme | yes | 2 | 1 | 1 | 2 | 1 |"));
  EXPECT_THAT(md, HasSubstr("| globex | no | 1 | 0 | 0 | 1 | 0 |"));
  // Timelines only for the confirmed tenants, with every row (also those before the
  // compromise, marked).
  EXPECT_THAT(md, HasSubstr("### acme (00oacme)"));
  EXPECT_THAT(md, Not(HasSubstr("### globex")));
  EXPECT_THAT(md, HasSubstr("| 2022-01-21T07:35:40.000Z | support.action.password\\_reset | DENY | "
                            "scope\\_missing | 00uana | dev-017 | 102s7 | 203.0.113.5 | users | "
                            "profile.email (masked) | yes |"));
  EXPECT_THAT(md, HasSubstr("| dev-003 | 102s1 |"));
  EXPECT_THAT(md, HasSubstr("<svg xmlns=\"http://www.w3.org/2000/svg\""));
}

TEST(ReportTest, TheTimelineDrawsTheCompromiseOnePerLaneWithAMarkPerKind) {
  const std::string svg = TimelineSvg(Scope());
  EXPECT_THAT(svg, StartsWith("<svg "));
  EXPECT_THAT(svg, HasSubstr("Compromise window: confirmed activity"));
  // One lane: the taken-over device's session; the earlier work of dev-003 is not drawn.
  EXPECT_THAT(svg, HasSubstr(">dev-017 \u00b7 102s7</text>"));
  EXPECT_THAT(svg, Not(HasSubstr("dev-003")));
  // Two views (circles r=4.5, plus the legend's), one refusal (cross, plus the legend's).
  EXPECT_EQ(Count(svg, "r=\"4.5\""), 3u);
  EXPECT_EQ(Count(svg, "stroke=\"#c62828\""), 2u);
  EXPECT_THAT(svg, HasSubstr("support.action.password_reset DENY (scope_missing)"));
  EXPECT_EQ(svg.substr(svg.size() - 6), "</svg>");
}

TEST(ReportTest, WithoutConfirmedActivityTheWholeWindowIsDrawn) {
  ScopeResult scope = Scope();
  scope.confirmed = 0;
  for (TenantScope& t : scope.tenants) {
    t.confirmed = false;
    for (TimelineEntry& e : t.timeline) e.confirmed = false;
  }
  const std::string svg = TimelineSvg(scope);
  EXPECT_THAT(svg, HasSubstr("Window: all activity in scope"));
  EXPECT_THAT(svg, HasSubstr("dev-003"));
  EXPECT_THAT(svg, HasSubstr("dev-009"));
  const std::string md = RenderReport(Incident(), &scope, ReportFormat::kMarkdown);
  EXPECT_THAT(md, HasSubstr("No tenant is in the confirmed scope."));
}

TEST(ReportTest, LanesBeyondTheCapAreCountedNotDrawn) {
  ScopeResult scope = Scope();
  scope.tenants.resize(1);
  scope.tenants[0].timeline.clear();
  for (int i = 0; i < kMaxTimelineLanes + 7; ++i) {
    scope.tenants[0].timeline.push_back(
        Entry(i / 2, "support.view", "SUCCESS", true, "dev-017", fmt::format("sess{}", i)));
  }
  const std::string svg = TimelineSvg(scope);
  EXPECT_THAT(svg, HasSubstr("7 more device/session lanes not drawn"));
  EXPECT_THAT(svg, HasSubstr("sess39"));
  EXPECT_THAT(svg, Not(HasSubstr("sess40")));
}

TEST(ReportTest, DataIsEscapedInMarkdownHtmlAndSvg) {
  store::IncidentRecord incident = Incident();
  incident.title = "<script>alert(1)</script> & \"friends\"";
  const ScopeResult scope = Scope();
  for (ReportFormat format : {ReportFormat::kMarkdown, ReportFormat::kHtml}) {
    const std::string text = RenderReport(incident, &scope, format);
    EXPECT_THAT(text, Not(HasSubstr("<script>"))) << static_cast<int>(format);
    EXPECT_THAT(text, Not(HasSubstr("Ev<il>")));
    EXPECT_THAT(text, Not(HasSubstr("\"Co\"")));
    EXPECT_THAT(text, HasSubstr("Ev&lt;il&gt; &amp; &quot;Co&quot;"));
    EXPECT_THAT(text, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;friends&quot;"));
  }
  const std::string svg = TimelineSvg(scope);
  EXPECT_THAT(svg, HasSubstr("Ev&lt;il&gt; &amp; &quot;Co&quot; \u00b7 support.view"));
  EXPECT_THAT(svg, Not(HasSubstr("Ev<il>")));
  EXPECT_EQ(HtmlEscape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
}

TEST(ReportTest, HtmlIsASelfContainedPage) {
  const ScopeResult scope = Scope();
  const std::string html = RenderReport(Incident(), &scope, ReportFormat::kHtml);
  EXPECT_THAT(html, StartsWith("<!DOCTYPE html>\n<html lang=\"en\">"));
  EXPECT_THAT(html, HasSubstr("<title>Incident incREPORT: Workstation nw-017 taken over | "
                              "contractor</title>"));
  EXPECT_THAT(html, HasSubstr("default-src 'none'"));
  EXPECT_THAT(html, HasSubstr("<td>acme</td><td>yes</td><td>2</td>"));
  EXPECT_THAT(html, HasSubstr("<h3>acme (00oacme)</h3>"));
  EXPECT_THAT(html, HasSubstr("<figure>\n<svg "));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("src=")));
  EXPECT_THAT(html, HasSubstr("</html>\n"));
}

TEST(ReportTest, AnIncidentNotScopedYetHasItsHeaderOnly) {
  for (ReportFormat format : {ReportFormat::kMarkdown, ReportFormat::kHtml}) {
    const std::string text = RenderReport(Incident(), nullptr, format);
    EXPECT_THAT(text, HasSubstr("Not scoped yet."));
    EXPECT_THAT(text, HasSubstr("vndnorthwind"));
    EXPECT_THAT(text, Not(HasSubstr("<svg")));
  }
}

}  // namespace
}  // namespace custos::incident

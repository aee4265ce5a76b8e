#include "api/security/security_routes.h"

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>

#include "common/errors.h"
#include "common/status_macros.h"
#include "incident/contacts.h"
#include "incident/status_feed.h"

namespace custos::api::security {
namespace {

// The status feed is read by anyone, often by polling: a minute of caching keeps that cheap.
constexpr std::string_view kFeedCacheControl = "public, max-age=60";

absl::Status OnlyFields(const Json& body, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : body.items()) {
    bool known = false;
    for (std::string_view a : allowed) known = known || key == a;
    if (!known) {
      return ValidationError("Api validation failed: body",
                             {fmt::format("{}: unknown property", key)});
    }
  }
  return absl::OkStatus();
}

// A required string member.
absl::StatusOr<std::string> RequiredString(const Json& body, std::string_view name) {
  auto it = body.find(std::string(name));
  if (it == body.end() || it->is_null()) {
    return ValidationError(fmt::format("Api validation failed: {}", name),
                           {fmt::format("{}: is required", name)});
  }
  if (!it->is_string()) {
    return ValidationError(fmt::format("Api validation failed: {}", name),
                           {fmt::format("{}: must be a string", name)});
  }
  return it->get<std::string>();
}

absl::StatusOr<incident::NewContact> ContactBody(const Json& body) {
  RETURN_IF_ERROR(OnlyFields(body, {"type", "name", "url", "address"}));
  incident::NewContact contact;
  ASSIGN_OR_RETURN(contact.type, RequiredString(body, "type"));
  ASSIGN_OR_RETURN(contact.name, RequiredString(body, "name"));
  if (contact.type == store::kContactWebhook) {
    if (body.contains("address")) {
      return ValidationError("Api validation failed: address",
                             {"address: a webhook contact takes url"});
    }
    ASSIGN_OR_RETURN(contact.address, RequiredString(body, "url"));
  } else if (contact.type == store::kContactEmail) {
    if (body.contains("url")) {
      return ValidationError("Api validation failed: url", {"url: an email contact takes address"});
    }
    ASSIGN_OR_RETURN(contact.address, RequiredString(body, "address"));
  }
  return contact;
}

absl::StatusOr<incident::NoticeDraft> NoticeBody(const Json& body) {
  RETURN_IF_ERROR(OnlyFields(body, {"kind", "title", "body"}));
  incident::NoticeDraft draft;
  ASSIGN_OR_RETURN(draft.kind, RequiredString(body, "kind"));
  ASSIGN_OR_RETURN(draft.title, RequiredString(body, "title"));
  ASSIGN_OR_RETURN(draft.body, RequiredString(body, "body"));
  return draft;
}

Response FeedResponse(int status, std::string content_type, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  r.AddHeader("Content-Type", std::move(content_type));
  r.AddHeader("Cache-Control", std::string(kFeedCacheControl));
  return r;
}

}  // namespace

std::vector<Route> SecurityRoutes(Services& s) {
  // Each handler holds its own copy: these hold only references to the services.
  incident::SecurityContacts contacts(
      s.store, s.sealer, s.clock, s.random,
      incident::ContactOptions{.allow_http_webhooks = s.config.notify_allow_http_webhooks});
  incident::StatusFeed feed(s.store, s.clock, s.random);

  const std::string t = "/t/{tenant}/api/v1/security";
  const std::string notices = "/provider/api/v1/status/notices";
  std::vector<Route> routes;

  routes.push_back(
      {"GET", t + "/contacts",
       TenantAdmin(s,
                   [contacts](Request&, const store::TenantRecord& tenant,
                              const audit::RequestContext&) mutable -> absl::StatusOr<Response> {
                     ASSIGN_OR_RETURN(std::vector<store::SecurityContactRecord> list,
                                      contacts.List(tenant.id));
                     Json items = Json::array();
                     for (const auto& c : list) items.push_back(incident::ContactView(c));
                     return Response::MakeJson(200, items);
                   })});
  routes.push_back(
      {"POST", t + "/contacts",
       TenantAdmin(
           s,
           [contacts](Request& r, const store::TenantRecord& tenant,
                      const audit::RequestContext& ctx) mutable -> absl::StatusOr<Response> {
             ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
             ASSIGN_OR_RETURN(incident::NewContact draft, ContactBody(body));
             ASSIGN_OR_RETURN(incident::CreatedContact created,
                              contacts.Create(tenant.id, ctx, draft));
             return Response::MakeJson(201, incident::ContactView(created.contact, created.secret));
           })});
  routes.push_back(
      {"DELETE", t + "/contacts/{contactId}",
       TenantAdmin(
           s,
           [contacts](Request& r, const store::TenantRecord& tenant,
                      const audit::RequestContext& ctx) mutable -> absl::StatusOr<Response> {
             RETURN_IF_ERROR(contacts.Delete(tenant.id, ctx, r.Param("contactId")));
             return Response::NoContent();
           })});
  routes.push_back(
      {"GET", t + "/notifications",
       TenantAdmin(s,
                   [contacts](Request&, const store::TenantRecord& tenant,
                              const audit::RequestContext&) mutable -> absl::StatusOr<Response> {
                     ASSIGN_OR_RETURN(std::vector<store::NotificationRecord> list,
                                      contacts.Notifications(tenant.id));
                     Json items = Json::array();
                     for (const auto& n : list) items.push_back(incident::NotificationView(n));
                     return Response::MakeJson(200, items);
                   })});
  routes.push_back(
      {"POST", t + "/notifications/{notificationId}/acknowledge",
       TenantAdmin(
           s,
           [contacts](Request& r, const store::TenantRecord& tenant,
                      const audit::RequestContext& ctx) mutable -> absl::StatusOr<Response> {
             ASSIGN_OR_RETURN(store::NotificationRecord n,
                              contacts.Acknowledge(tenant.id, ctx, r.Param("notificationId")));
             return Response::MakeJson(200, incident::NotificationView(n));
           })});

  routes.push_back(
      {"GET", "/status.json", [feed](Request& r) mutable -> Response {
         return Respond(r, [&]() -> absl::StatusOr<Response> {
           ASSIGN_OR_RETURN(int limit, ParseLimit(r, 50, 500));
           ASSIGN_OR_RETURN(std::vector<store::StatusNoticeRecord> list, feed.List(limit));
           return FeedResponse(200, "application/json", DumpJson(incident::FeedJson(list)));
         }());
       }});
  routes.push_back({"GET", "/status.atom", [feed, &s](Request& r) mutable -> Response {
                      return Respond(r, [&]() -> absl::StatusOr<Response> {
                        ASSIGN_OR_RETURN(int limit, ParseLimit(r, 50, 500));
                        ASSIGN_OR_RETURN(std::vector<store::StatusNoticeRecord> list,
                                         feed.List(limit));
                        return FeedResponse(200, "application/atom+xml; charset=utf-8",
                                            incident::FeedAtom(list, r.base_url, s.clock.Now()));
                      }());
                    }});
  routes.push_back(
      {"POST", notices,
       ProviderAdmin(s,
                     [feed](Request& r,
                            const audit::RequestContext& ctx) mutable -> absl::StatusOr<Response> {
                       ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
                       ASSIGN_OR_RETURN(incident::NoticeDraft draft, NoticeBody(body));
                       ASSIGN_OR_RETURN(store::StatusNoticeRecord notice, feed.Publish(ctx, draft));
                       return Response::MakeJson(201, incident::NoticeView(notice));
                     })});
  routes.push_back({"PUT", notices + "/{noticeId}",
                    ProviderAdmin(s,
                                  [feed](Request& r, const audit::RequestContext& ctx) mutable
                                  -> absl::StatusOr<Response> {
                                    ASSIGN_OR_RETURN(Json body, ParseObjectBody(r));
                                    ASSIGN_OR_RETURN(incident::NoticeDraft draft, NoticeBody(body));
                                    ASSIGN_OR_RETURN(store::StatusNoticeRecord notice,
                                                     feed.Update(ctx, r.Param("noticeId"), draft));
                                    return Response::MakeJson(200, incident::NoticeView(notice));
                                  })});
  return routes;
}

}  // namespace custos::api::security

#include "api/management/logs_handler.h"

#include "audit/log_query.h"
#include "audit/sequencer.h"
#include "common/status_macros.h"

namespace custos::api::management {

absl::StatusOr<Response> ListLogs(Services& services, const Request& request,
                                  const store::TenantRecord& tenant,
                                  const audit::RequestContext& /*ctx*/) {
  audit::LogQueryParams params{.since = request.Query("since"),
                               .until = request.Query("until"),
                               .after = request.Query("after"),
                               .limit = request.Query("limit"),
                               .sort_order = request.Query("sortOrder"),
                               .filter = request.Query("filter"),
                               .q = request.Query("q")};
  // The origin the log got when it was created; until then the one it will get.
  absl::StatusOr<store::LogStateRecord> state = store::ReadResult(
      services.store,
      [&](store::Transaction& tx) { return tx.Logs().GetState(tenant.id.value()); });
  if (!state.ok() && !absl::IsNotFound(state.status())) return state.status();
  audit::LogQueryOptions options;
  options.log_origin =
      state.ok() ? state->origin : audit::TenantLogOrigin(LogHost(request.base_url), tenant.name);
  audit::LogQuery query(services.store, services.clock, options);
  ASSIGN_OR_RETURN(audit::LogPage page, query.Run(tenant.id, params));
  OrderedJson items = OrderedJson::array();
  for (OrderedJson& event : page.events) items.push_back(std::move(event));
  Response r;
  r.status = 200;
  r.body = DumpJson(items);
  r.AddHeader("Content-Type", "application/json");
  if (page.default_since.empty()) {
    AddPagingLinks(r, request, page.next_after);
  } else {
    Request pinned = request;
    pinned.query["since"] = page.default_since;
    AddPagingLinks(r, pinned, page.next_after);
  }
  return r;
}

}  // namespace custos::api::management

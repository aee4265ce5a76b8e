// The System Log explorer's filter fields, turned into the API's filter expression
// (docs/system-log.md, "Filter expressions"). Values become JSON string literals, so nothing a
// person types can change the expression's structure.

export interface LogFilterInput {
  eventType?: string;
  actor?: string;
  outcome?: string;
}

function literal(value: string): string {
  return JSON.stringify(value);
}

export function buildLogFilter(f: LogFilterInput): string {
  const parts: string[] = [];
  const type = (f.eventType ?? '').trim();
  if (type) {
    if (type.endsWith('*')) {
      const prefix = type.slice(0, -1);
      if (prefix) parts.push(`eventType sw ${literal(prefix)}`);
    } else {
      parts.push(`eventType eq ${literal(type)}`);
    }
  }
  const actor = (f.actor ?? '').trim();
  if (actor) {
    parts.push(
      `(actor.id eq ${literal(actor)} or actor.alternateId co ${literal(actor)} or actor.displayName co ${literal(actor)})`,
    );
  }
  const outcome = (f.outcome ?? '').trim();
  if (outcome) parts.push(`outcome.result eq ${literal(outcome.toUpperCase())}`);
  return parts.join(' and ');
}

/** A filter that finds the given events by uuid. */
export function uuidFilter(uuids: readonly string[]): string {
  return uuids.map((u) => `uuid eq ${literal(u)}`).join(' or ');
}

/** Event types a person is likely to look for (the explorer's suggestions). */
export const COMMON_EVENT_TYPES = [
  'user.session.start',
  'user.session.end',
  'user.session.access_admin_app',
  'user.authentication.auth_via_mfa',
  'user.lifecycle.create',
  'user.lifecycle.activate',
  'user.lifecycle.deactivate',
  'user.lifecycle.suspend',
  'user.account.reset_password',
  'user.account.lock',
  'user.mfa.factor.reset_all',
  'group.user_membership.add',
  'group.user_membership.remove',
  'support.*',
  'support.access.request',
  'support.access.deny',
  'support.view',
  'support.gate.deny',
  'support.confirmation.confirm',
  'user.session.impersonation.grant',
  'user.session.impersonation.extend',
  'user.session.impersonation.revoke',
  'security.incident.evidence',
  'security.notification.deliver',
  'system.api_token.verify',
];

// The timeline picture of one tenant of an incident's scope: one lane per operator session
// (device · session), time left to right, a mark per event: circle = view, square = guarded
// action attempted, cross = refused, small dot = anything else. The same classification as
// the server's report (src/incident/report.cc). Drawn as SVG with presentation attributes only
// (no style attributes: the console's CSP forbids inline styles).
import { type TemplateResult, html, nothing, svg } from 'lit-html';

export interface TimelineEntry {
  time?: string;
  eventType?: string;
  outcome?: string;
  reason?: string;
  operatorId?: string;
  vendorId?: string;
  deviceId?: string;
  sessionId?: string;
  ip?: string;
  grantId?: string;
  caseId?: string;
  resource?: string;
  fields?: string;
  uuid?: string;
  confirmed?: boolean;
}

export type MarkKind = 'view' | 'attempt' | 'refusal' | 'other';

export function kindOf(e: TimelineEntry): MarkKind {
  if (e.outcome === 'DENY' || e.outcome === 'FAILURE') return 'refusal';
  if ((e.eventType ?? '').startsWith('support.action.')) return 'attempt';
  if (e.eventType === 'support.view') return 'view';
  return 'other';
}

export function laneName(e: TimelineEntry): string {
  return `${e.deviceId || 'no device'} · ${e.sessionId || 'no session'}`;
}

export interface Range {
  start: number;
  end: number;
}

export interface LaidMark {
  x: number;
  y: number;
  kind: MarkKind;
  title: string;
}

export interface TimelineLayout {
  width: number;
  height: number;
  plotLeft: number;
  plotRight: number;
  lanes: Array<{ label: string; y: number }>;
  marks: LaidMark[];
  ticks: Array<{ x: number; label: string }>;
  range: Range;
  hiddenLanes: number;
  outside: number;
  counts: Record<MarkKind, number>;
}

export const WIDTH = 960;
const LABEL_WIDTH = 290;
const RIGHT = WIDTH - 24;
const TOP = 34;
const LANE = 26;
export const MAX_LANES = 40;

function ms(iso: string | undefined): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? NaN : t;
}

function tickLabel(t: number, span: number): string {
  const iso = new Date(t).toISOString();
  if (span > 48 * 3600_000) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  if (span > 10 * 60_000) return iso.slice(11, 16);
  return iso.slice(11, 19);
}

function shorten(s: string, max: number): string {
  const chars = Array.from(s);
  return chars.length <= max ? s : chars.slice(0, max - 1).join('') + '…';
}

export function describe(e: TimelineEntry, tenant: string): string {
  let what = `${e.time ?? '?'} · ${tenant} · ${e.eventType ?? '?'} ${e.outcome ?? ''}`.trim();
  if (e.reason) what += ` (${e.reason})`;
  if (e.resource) what += ` · ${e.resource}`;
  if (e.fields) what += ` · fields: ${e.fields}`;
  if (e.operatorId) what += ` · operator ${e.operatorId}`;
  if (e.ip) what += ` · from ${e.ip}`;
  return what;
}

/**
 * Lays out `entries` over `range` (milliseconds). Entries outside the range, or without a
 * readable time, are counted in `outside` and not drawn; lanes beyond MAX_LANES in `hiddenLanes`.
 */
export function layoutTimeline(entries: readonly TimelineEntry[], range: Range, tenant: string): TimelineLayout {
  const counts: Record<MarkKind, number> = { view: 0, attempt: 0, refusal: 0, other: 0 };
  const inRange = entries
    .map((e) => ({ e, t: ms(e.time) }))
    .filter(({ t }) => !Number.isNaN(t) && t >= range.start && t <= range.end)
    .sort((a, b) => a.t - b.t);
  const outside = entries.length - inRange.length;
  const laneIndex = new Map<string, number>();
  const lanes: string[] = [];
  let hidden = 0;
  for (const { e } of inRange) {
    const name = laneName(e);
    if (laneIndex.has(name)) continue;
    if (lanes.length < MAX_LANES) {
      laneIndex.set(name, lanes.length);
      lanes.push(name);
    } else {
      laneIndex.set(name, -1);
      hidden++;
    }
  }
  const laneCount = Math.max(1, lanes.length);
  const plotBottom = TOP + laneCount * LANE;
  const span = Math.max(1, range.end - range.start);
  const xOf = (t: number) => LABEL_WIDTH + ((t - range.start) / span) * (RIGHT - LABEL_WIDTH);
  const marks: LaidMark[] = [];
  for (const { e, t } of inRange) {
    const lane = laneIndex.get(laneName(e)) ?? -1;
    if (lane < 0) continue;
    const kind = kindOf(e);
    counts[kind]++;
    marks.push({ x: xOf(t), y: TOP + (lane + 0.5) * LANE, kind, title: describe(e, tenant) });
  }
  const ticks = Array.from({ length: 6 }, (_, i) => {
    const t = range.start + (span * i) / 5;
    return { x: xOf(t), label: tickLabel(t, span) };
  });
  return {
    width: WIDTH,
    height: plotBottom + 64,
    plotLeft: LABEL_WIDTH,
    plotRight: RIGHT,
    lanes: lanes.map((label, i) => ({ label: shorten(label, 34), y: TOP + (i + 0.5) * LANE })),
    marks,
    ticks,
    range,
    hiddenLanes: hidden,
    outside,
    counts,
  };
}

export function ariaLabel(tenant: string, l: TimelineLayout): string {
  const iso = (t: number) => new Date(t).toISOString().replace('.000Z', 'Z');
  return (
    `Timeline of ${tenant} from ${iso(l.range.start)} to ${iso(l.range.end)}: ` +
    `${l.lanes.length} operator session lane${l.lanes.length === 1 ? '' : 's'}, ` +
    `${l.counts.view} view${l.counts.view === 1 ? '' : 's'}, ${l.counts.attempt} attempted guarded action${l.counts.attempt === 1 ? '' : 's'}, ` +
    `${l.counts.refusal} refusal${l.counts.refusal === 1 ? '' : 's'}, ${l.counts.other} other event${l.counts.other === 1 ? '' : 's'}.`
  );
}

function markShape(m: LaidMark) {
  switch (m.kind) {
    case 'refusal':
      return svg`<path d=${`M${(m.x - 5).toFixed(1)} ${(m.y - 5).toFixed(1)}l10 10m0 -10l-10 10`} stroke="#b71c1c" stroke-width="2.5" fill="none"/>`;
    case 'attempt':
      return svg`<rect x=${(m.x - 5).toFixed(1)} y=${(m.y - 5).toFixed(1)} width="10" height="10" fill="#b45309"/>`;
    case 'view':
      return svg`<circle cx=${m.x.toFixed(1)} cy=${m.y.toFixed(1)} r="5" fill="#1d4ed8"/>`;
    default:
      return svg`<circle cx=${m.x.toFixed(1)} cy=${m.y.toFixed(1)} r="3" fill="#6b7280"/>`;
  }
}

export function timelineSvg(tenant: string, l: TimelineLayout): TemplateResult {
  const bottom = l.height - 64;
  const legendY = bottom + 46;
  return html`<svg
    class="timeline"
    data-testid=${`timeline-${tenant}`}
    role="img"
    aria-label=${ariaLabel(tenant, l)}
    viewBox=${`0 0 ${l.width} ${l.height}`}
    preserveAspectRatio="xMinYMin meet"
    focusable="false"
  >
    <rect x="0" y="0" width=${l.width} height=${l.height} fill="#ffffff"/>
    ${l.lanes.map(
      (lane, i) => svg`
        ${i % 2 === 0 ? svg`<rect x=${l.plotLeft} y=${lane.y - 13} width=${l.plotRight - l.plotLeft} height="26" fill="#f3f4f6"/>` : nothing}
        <text x=${l.plotLeft - 8} y=${lane.y + 4} text-anchor="end" font-size="12" fill="#1f2937">${lane.label}</text>`,
    )}
    ${l.lanes.length === 0
      ? svg`<text x=${l.plotLeft + 10} y="51" font-size="12" fill="#374151">No support activity in this range.</text>`
      : nothing}
    <line x1=${l.plotLeft} y1=${bottom} x2=${l.plotRight} y2=${bottom} stroke="#4b5563" stroke-width="1"/>
    ${l.ticks.map(
      (t) => svg`<line x1=${t.x} y1=${bottom} x2=${t.x} y2=${bottom + 5} stroke="#4b5563"/>
        <text x=${t.x} y=${bottom + 18} text-anchor="middle" font-size="11" fill="#374151">${t.label}</text>`,
    )}
    <text x=${l.plotLeft} y="20" font-size="12" fill="#374151">Time (UTC) →   lanes: device · session</text>
    ${l.marks.map((m) => svg`<g class="tl-mark"><title>${m.title}</title>${markShape(m)}</g>`)}
    <g font-size="12" fill="#1f2937">
      <circle cx=${l.plotLeft + 6} cy=${legendY - 4} r="5" fill="#1d4ed8"/>
      <text x=${l.plotLeft + 16} y=${legendY}>view</text>
      <rect x=${l.plotLeft + 71} y=${legendY - 9} width="10" height="10" fill="#b45309"/>
      <text x=${l.plotLeft + 86} y=${legendY}>guarded action attempted</text>
      <path d=${`M${l.plotLeft + 261} ${legendY - 9}l10 10m0 -10l-10 10`} stroke="#b71c1c" stroke-width="2.5" fill="none"/>
      <text x=${l.plotLeft + 276} y=${legendY}>refused</text>
      <circle cx=${l.plotLeft + 346} cy=${legendY - 4} r="3" fill="#6b7280"/>
      <text x=${l.plotLeft + 354} y=${legendY}>other</text>
      ${l.hiddenLanes > 0
        ? svg`<text x=${l.plotLeft + 420} y=${legendY}>${l.hiddenLanes} more lanes not drawn</text>`
        : nothing}
    </g>
  </svg>`;
}

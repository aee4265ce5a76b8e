// The LogSource of a tenant's log over the console's API (docs/system-log.md, "Reading the log
// over HTTP"). What it returns is checked by LogVerifier; nothing here is trusted.
import { type Api, query } from '../api';
import { StorageTrustStore, MemoryTrustStore, type TrustStore } from './trust';
import { type ConsistencyProof, type InclusionProof, type LogSource, LogVerifier, leafTilePath } from './log-verifier';

export function apiLogSource(api: Api, prefix: string): LogSource {
  return {
    checkpoint: () => api.text(`${prefix}/log/checkpoint`),
    keys: async () => {
      const keys = await api.get<Array<{ vkey?: unknown }>>(`${prefix}/api/v1/log/keys`);
      return (Array.isArray(keys) ? keys : []).map((k) => k?.vkey).filter((v): v is string => typeof v === 'string');
    },
    inclusion: (index, size) => api.get<InclusionProof>(`${prefix}/log/proof/inclusion${query({ index, size })}`),
    consistency: (from, to) => api.get<ConsistencyProof>(`${prefix}/log/proof/consistency${query({ from, to })}`),
    leafHashAt: async (index, size) => {
      const res = await api.raw(`${prefix}/log/${leafTilePath(index, size)}`, { accept: 'application/octet-stream' });
      const tile = new Uint8Array(await res.arrayBuffer());
      const offset = (index % 256) * 32;
      if (tile.length < offset + 32) throw new Error('the tile is too short');
      return tile.slice(offset, offset + 32);
    },
  };
}

function browserTrustStore(): TrustStore {
  try {
    const probe = 'custos.console.probe';
    localStorage.setItem(probe, '1');
    localStorage.removeItem(probe);
    return new StorageTrustStore(localStorage);
  } catch {
    return new MemoryTrustStore();
  }
}

const verifiers = new Map<string, LogVerifier>();

/** One verifier per signed-in tenant and session, so proofs are not fetched twice. */
export function verifierFor(api: Api, prefix: string, token: string, expectedOrigin?: string): LogVerifier {
  const key = `${prefix} ${token}`;
  let v = verifiers.get(key);
  if (!v) {
    verifiers.clear();
    v = new LogVerifier(apiLogSource(api, prefix), browserTrustStore(), { expectedOrigin });
    verifiers.set(key, v);
  }
  return v;
}

// The LogSource of a tenant's log over the console's API (docs/system-log.md, "Reading the log
// over HTTP"). What it returns is checked by LogVerifier; nothing here is trusted. Every request
// is the console's own, not the admin's: it carries X-Custos-Background, and the verifier's
// deadline aborts it.
import { type Api, query } from '../api';
import { StorageTrustStore, MemoryTrustStore, type TrustStore } from './trust';
import { type ConsistencyProof, type InclusionProof, type LogSource, LogVerifier, leafTilePath } from './log-verifier';

export function apiLogSource(api: Api, prefix: string): LogSource {
  const options = (signal?: AbortSignal) => ({ background: true, signal });
  return {
    checkpoint: (signal) => api.text(`${prefix}/log/checkpoint`, options(signal)),
    keys: async (signal) => {
      const keys = await api.get<Array<{ vkey?: unknown }>>(`${prefix}/api/v1/log/keys`, options(signal));
      return (Array.isArray(keys) ? keys : []).map((k) => k?.vkey).filter((v): v is string => typeof v === 'string');
    },
    inclusion: (index, size, signal) =>
      api.get<InclusionProof>(`${prefix}/log/proof/inclusion${query({ index, size })}`, options(signal)),
    consistency: (from, to, signal) =>
      api.get<ConsistencyProof>(`${prefix}/log/proof/consistency${query({ from, to })}`, options(signal)),
    leafHashAt: async (index, size, signal) => {
      const res = await api.raw(`${prefix}/log/${leafTilePath(index, size)}`, {
        ...options(signal),
        accept: 'application/octet-stream',
      });
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

/**
 * One verifier per signed-in tenant and session, so proofs are not fetched twice.
 * `expectedOrigin` is worked out by the browser (./origin.ts), never taken from the server.
 */
export function verifierFor(api: Api, prefix: string, token: string, tenant: string, expectedOrigin: string): LogVerifier {
  const key = `${prefix} ${token} ${expectedOrigin}`;
  let v = verifiers.get(key);
  if (!v) {
    verifiers.clear();
    v = new LogVerifier(apiLogSource(api, prefix), browserTrustStore(), { expectedOrigin, tenant });
    verifiers.set(key, v);
  }
  return v;
}

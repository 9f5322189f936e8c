import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import type { EnsureStreamResult } from '../types.js';

export type WantedStream = Partial<StreamConfig> & Pick<StreamConfig, 'name' | 'subjects'>;

/** The fields we set, compared after the server filled in its defaults. */
const COMPARED: (keyof StreamConfig)[] = [
  'subjects',
  'max_age',
  'duplicate_window',
  'max_bytes',
  'num_replicas',
  'storage',
  'retention',
  'discard',
  'max_msgs_per_subject',
  'allow_rollup_hdrs',
  'deny_delete',
  'allow_direct',
];

function differs(current: StreamConfig, wanted: WantedStream): boolean {
  return COMPARED.some((key) => {
    if (!(key in wanted)) return false;
    const want = wanted[key];
    const have = current[key];
    if (Array.isArray(want) && Array.isArray(have)) {
      return [...want].sort().join('\n') !== [...have].sort().join('\n');
    }
    return want !== have;
  });
}

/** Create or update: safe to call at every start, from every replica at once. */
export async function ensureJetStream(jsm: JetStreamManager, wanted: WantedStream): Promise<EnsureStreamResult> {
  for (let attempt = 0; ; attempt++) {
    let current: StreamConfig | undefined;
    try {
      current = (await jsm.streams.info(wanted.name)).config;
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)) throw error;
    }
    if (current === undefined) {
      try {
        await jsm.streams.add(wanted);
        return 'created';
      } catch (error) {
        // Another replica created it between our info and add: compare with theirs.
        if (attempt === 0 && error instanceof JetStreamApiError) continue;
        throw error;
      }
    }
    if (!differs(current, wanted)) return 'unchanged';
    await jsm.streams.update(wanted.name, { ...current, ...wanted });
    return 'updated';
  }
}

export function eventStreamConfig(spec: {
  name: string;
  subjects: string[];
  maxAgeMs: number;
  duplicateWindowMs: number;
  maxBytes?: number;
  replicas?: number;
}): WantedStream {
  return {
    name: spec.name,
    subjects: [...spec.subjects],
    max_age: nanos(spec.maxAgeMs),
    duplicate_window: nanos(spec.duplicateWindowMs),
    max_bytes: spec.maxBytes ?? -1,
    num_replicas: spec.replicas ?? 1,
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
  };
}

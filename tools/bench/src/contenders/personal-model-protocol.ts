import type { PersonalModelsStats } from '@aimass/personal-model';

/** What the bench asks the personal-model process it started (personal-model-host.ts). */
export type HostRequest =
  | { readonly type: 'stats'; readonly id: number }
  /** Loads each user's model through the service's cache (as a Score would). */
  | { readonly type: 'warm'; readonly id: number; readonly tenant: string; readonly users: readonly string[] }
  /** Times cold loads of each user (evicted first), whole and in parts. */
  | { readonly type: 'cold-loads'; readonly id: number; readonly tenant: string; readonly users: readonly string[] };

export type HostReply =
  | { readonly type: 'stats'; readonly id: number; readonly stats: PersonalModelsStats; readonly maxBytes: number; readonly revalidateMs: number }
  | { readonly type: 'warmed'; readonly id: number; readonly ms: number }
  | {
      readonly type: 'cold-loads';
      readonly id: number;
      /** PersonalModels.current per user, ms. */
      readonly total: readonly number[];
      /** Its parts, per user, ms: pointer read, version read (document decode included), PersonalModel.deserialize. */
      readonly pointer: readonly number[];
      readonly version: readonly number[];
      readonly decode: readonly number[];
      /** Stored parameter bytes per user. */
      readonly bytes: readonly number[];
    }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

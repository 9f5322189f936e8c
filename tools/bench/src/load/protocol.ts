import type { LatencySummary } from './stats.js';
import type { UserSelection } from './users.js';

/** Closed loop: `concurrency` clients, each sending its next request as soon as the last one answered. */
export interface ClosedLoopMode {
  readonly kind: 'closed';
  readonly concurrency: number;
}

/**
 * Open loop: requests start at a fixed rate whatever the answers do, evenly spaced. Latency
 * counts from the moment a request was due, so a stalled client cannot hide queueing
 * (no coordinated omission).
 */
export interface OpenLoopMode {
  readonly kind: 'open';
  readonly ratePerS: number;
  /** Requests in flight beyond this are not sent and count as `CLIENT_OVERLOAD` errors. */
  readonly maxOutstanding: number;
}

export type LoadMode = ClosedLoopMode | OpenLoopMode;

/**
 * What a valid answer is, by the method's response message. An answer that does not decode or
 * lacks what is checked counts as a `BAD_RESPONSE` failure, so a contender cannot win by
 * answering nothing. `outcome` answers are also tallied by what they say (see LoadResult.outcomes).
 */
export type ResponseCheck =
  /** inference.ModelInferResponse with `outputs` output tensors. */
  | { readonly kind: 'model-infer'; readonly outputs: number }
  /** aimass.v1.ClassifyResponse with `results` results, each with probabilities. */
  | { readonly kind: 'classify'; readonly results: number }
  /** aimass.v1.PredictResponse with a prediction; tallied by applied strategy or fallback reason. */
  | { readonly kind: 'predict' }
  /** aimass.v1.ScoreResponse with `results` results; tallied by status. */
  | { readonly kind: 'score'; readonly results: number };

/** One measurement, sent to the load process. */
export interface LoadSpec {
  /** host:port of the gRPC server. */
  readonly address: string;
  /** Full method path, e.g. `/inference.GRPCInferenceService/ModelInfer`. */
  readonly method: string;
  /**
   * Serialized request messages, sent round-robin. Encoded once up front: the load process
   * shares the CPU with the server under test, so it does as little as a client can.
   */
  readonly payloads: readonly Uint8Array[];
  /** Rows each request carries (the first dimension of its inputs). */
  readonly rowsPerRequest: number;
  /** Outputs a valid ModelInfer answer has; answers with another count are `BAD_RESPONSE` errors. */
  readonly expectedOutputs: number;
  /** How answers of other methods are checked; default: ModelInfer with `expectedOutputs` outputs. */
  readonly response?: ResponseCheck | undefined;
  /** Metadata of every call (e.g. the tenant, `x-aimass-tenant`). */
  readonly metadata?: Readonly<Record<string, string>> | undefined;
  /** When set, `payloads` are templates without the user, and each request is given one (see UserSelection). */
  readonly users?: UserSelection | undefined;
  /** HTTP/2 connections the clients share (client i uses connection i mod connections). */
  readonly connections: number;
  readonly deadlineMs: number;
  /** Load at the same mode before measuring; nothing from this phase is recorded. */
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly mode: LoadMode;
}

/** What one measurement found. */
export interface LoadResult {
  readonly mode: LoadMode;
  /** Length of the measured window in seconds. */
  readonly durationS: number;
  /** Successful requests that completed inside the window. */
  readonly requests: number;
  readonly rows: number;
  readonly requestsPerS: number;
  readonly rowsPerS: number;
  /** Failed requests inside the window, by gRPC status name (or CLIENT_OVERLOAD, BAD_RESPONSE). */
  readonly errors: Readonly<Record<string, number>>;
  readonly errorCount: number;
  readonly latencyMs: LatencySummary;
  /** CPU the load process itself used during the window, in cores (1 = one core fully busy). */
  readonly clientCpuCores: number;
  /** Successful answers in the window by what they said (predict: `applied:STACKING`, `fallback:NO_PERSONAL_MODEL`; score: `status:OK`). */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Mean time per stage as the answers reported it (predict: provenance timings, e.g. GENERAL_MODEL), ms. */
  readonly stageMeansMs: Readonly<Record<string, number>>;
}

/** The measured window of a run starts or ends (sent as it happens, so the parent can read server counters at its edges). */
export type WindowPhase = 'start' | 'end';

export type ParentMessage = { readonly type: 'run'; readonly id: number; readonly spec: LoadSpec };

export type ChildMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'window'; readonly id: number; readonly phase: WindowPhase }
  | { readonly type: 'result'; readonly id: number; readonly result: LoadResult }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

export const MODEL_INFER_METHOD = '/inference.GRPCInferenceService/ModelInfer';
export const CLASSIFY_METHOD = '/aimass.v1.GeneralModelService/Classify';
export const PREDICT_METHOD = '/aimass.v1.InferenceService/Predict';
export const SCORE_METHOD = '/aimass.v1.PersonalModelService/Score';

// Messages between the pool (main thread) and an inference worker. Type-only: the worker imports
// nothing from this package at run time (see worker-script.ts).

/** Tensor data as it crosses the thread boundary; `buffer` is transferred, not copied. */
export interface WireTensor {
  name: string;
  /** onnxruntime tensor type ('float32', 'int64', ...). */
  type: string;
  dims: number[];
  buffer: ArrayBuffer;
  byteOffset: number;
  byteLength: number;
}

/** What onnxruntime reports for an input or output; symbolic dims are strings. */
export interface WireValueMeta {
  name: string;
  isTensor: boolean;
  type: string;
  dims: (number | string)[];
}

export interface WireSessionOptions {
  intraOpNumThreads: number;
  executionProviders: string[];
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
}

/**
 * Test-only fault injection: die (`exit`: process.exit in the thread, `throw`: an uncaught error),
 * or `stall`: block the thread for `ms` (a long run), now or when the next run arrives.
 */
export interface WorkerFault {
  kind: 'exit' | 'throw' | 'stall';
  when: 'now' | 'next-run';
  ms?: number;
}

export type ToWorker =
  | { op: 'load'; id: number; key: string; path: string; options: WireSessionOptions; warmup: boolean }
  | { op: 'run'; id: number; key: string; feeds: WireTensor[] }
  | { op: 'unload'; id: number; key: string }
  | { op: 'fault'; fault: WorkerFault };

export type FromWorker =
  | { op: 'ready' }
  | { op: 'loaded'; id: number; inputs: WireValueMeta[]; outputs: WireValueMeta[]; loadMs: number; warmupMs: number }
  | { op: 'result'; id: number; outputs: WireTensor[]; runMs: number }
  | { op: 'unloaded'; id: number }
  | { op: 'error'; id: number; message: string };

export interface WorkerData {
  /** Absolute path of onnxruntime-node's entry, so the worker script can live anywhere. */
  ortPath: string;
}

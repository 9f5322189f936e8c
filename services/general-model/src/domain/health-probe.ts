import { bytesPerElement } from './datatypes.js';
import type { HostTensor, ModelSignature } from './tensor.js';

/**
 * One row of zeros for every input of a signature (a variable dimension taken as 1): what the
 * warm-up runs, and what a probe runs to tell a model that fails on everything from a request
 * whose own values the model refused.
 */
export function zeroInputs(signature: ModelSignature): HostTensor[] {
  return signature.inputs.map((spec) => {
    const dims = spec.dims.map((d) => (d >= 0 ? d : 1));
    const elements = dims.reduce((a, b) => a * b, 1);
    return { name: spec.name, datatype: spec.datatype, dims, bytes: new Uint8Array(elements * bytesPerElement(spec.datatype)) };
  });
}

export interface HealthProbeOptions {
  /** Runs the model on a known-good input; resolves when it answered, rejects when it failed. */
  run: () => Promise<unknown>;
  /** How long an answer is reused, so a flood of refused requests costs one probe per period, not one each. */
  ttlMs: number;
  now?: () => number;
}

/**
 * Whether a model version runs at all, asked after a request failed alone. Concurrent questions
 * share one probe run, and its answer is reused for `ttlMs`.
 */
export class HealthProbe {
  readonly #options: HealthProbeOptions;
  readonly #now: () => number;
  #answer: { healthy: boolean; at: number } | undefined;
  #pending: Promise<boolean> | undefined;
  #runs = 0;

  constructor(options: HealthProbeOptions) {
    this.#options = options;
    this.#now = options.now ?? performance.now.bind(performance);
  }

  /** Probe runs so far (for tests and statistics). */
  get runs(): number {
    return this.#runs;
  }

  healthy(): Promise<boolean> {
    const answer = this.#answer;
    if (answer && this.#now() - answer.at < this.#options.ttlMs) return Promise.resolve(answer.healthy);
    this.#pending ??= this.#probe().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #probe(): Promise<boolean> {
    this.#runs++;
    let healthy: boolean;
    try {
      await this.#options.run();
      healthy = true;
    } catch {
      healthy = false;
    }
    this.#answer = { healthy, at: this.#now() };
    return healthy;
  }
}

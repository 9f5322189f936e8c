/** A release function; calling it more than once releases once. */
export type Release = () => void;

/** At most `max` holders at a time (0: no limit, only counted). */
export class ConcurrencyLimiter {
  #max: number;
  #inFlight = 0;

  constructor(max: number) {
    if (!(max >= 0) || !Number.isInteger(max)) throw new RangeError('max must be a whole number >= 0');
    this.#max = max;
  }

  get max(): number {
    return this.#max;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** Lowering it below `inFlight` refuses new holders until enough have released. */
  set max(value: number) {
    if (!(value >= 0) || !Number.isInteger(value)) throw new RangeError('max must be a whole number >= 0');
    this.#max = value;
  }

  /** A release function when a slot is free, undefined when all `max` are held. */
  tryAcquire(): Release | undefined {
    if (this.#max > 0 && this.#inFlight >= this.#max) return undefined;
    this.#inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#inFlight--;
    };
  }
}

import { within } from './delivery.js';
import { isValidFilter } from './subjects.js';
import { withTraceContext } from './trace.js';
import type { LiveEvent, LiveHandler, SubscribeOptions, Subscription } from './types.js';

const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

export function assertSubscribeSubject(subject: string): void {
  if (subject.length === 0 || !isValidFilter(subject)) {
    throw new RangeError(`subscribe needs a subject or filter (tokens, '*' anywhere, '>' last): ${JSON.stringify(subject)}`);
  }
}

/**
 * One live subscription, whatever the transport: runs the handler one event at a time in arrival
 * order (so a later event never overtakes an earlier one of the same publisher), inside the
 * publisher's trace context, and reports failures instead of letting them escape.
 */
export class LiveSubscription implements Subscription {
  private chain: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;

  constructor(
    readonly subject: string,
    private readonly handler: LiveHandler,
    private readonly options: SubscribeOptions,
    /** Stops the transport from delivering more (unsubscribe). */
    private readonly detach: () => void,
  ) {}

  get closed(): boolean {
    return this.closing !== undefined;
  }

  deliver(event: LiveEvent): void {
    if (this.closing !== undefined) return;
    this.chain = this.chain.then(() =>
      withTraceContext(event.headers, async () => {
        try {
          await this.handler(event);
        } catch (error) {
          this.report(error, event);
        }
      }),
    );
  }

  /** Events may have been missed: told at once, not queued behind older events. */
  gap(): void {
    if (this.closing !== undefined) return;
    try {
      this.options.onGap?.();
    } catch (error) {
      this.report(error);
    }
  }

  report(error: unknown, event?: LiveEvent): void {
    try {
      this.options.onError?.(error, event);
    } catch {
      // An observer must not break the subscription.
    }
  }

  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    try {
      this.detach();
    } catch (error) {
      this.report(error);
    }
    await within(this.chain, this.options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS);
  }
}

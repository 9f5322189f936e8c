import { hostname } from 'node:os';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type DestinationStream, type Logger, type LoggerOptions as PinoOptions } from 'pino';
import { redactSensitive } from './redact.js';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export type { Logger };

export interface LogPseudonymizer {
  pseudonymize(tenant: string, userId: string): string;
}

export interface CreateLoggerOptions {
  /** The service name, on every line as `service`. */
  service: string;
  level?: LogLevel | undefined;
  /** Where lines go; stdout when omitted. Tests pass a Writable to capture them. */
  destination?: DestinationStream | undefined;
  /** When given, identifier keys (userId, email, …) are logged as `psn:<pseudonym>` instead of `[redacted]`. */
  pseudonymizer?: LogPseudonymizer | undefined;
}

const TENANT = Symbol('aimass.log.tenant');

interface TenantCarrier {
  [TENANT]?: string;
}

function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const ctx = span.spanContext();
  if (!isSpanContextValid(ctx)) return {};
  return { trace_id: ctx.traceId, span_id: ctx.spanId };
}

function bindingTenant(bindings: Record<string, unknown>): string | undefined {
  const t = bindings['tenant'] ?? bindings['tenantId'];
  return typeof t === 'string' && t.length > 0 ? t : undefined;
}

/**
 * A pino JSON logger for a service. Every line carries `service`, `level` (as a label), ISO
 * `time`, and `trace_id`/`span_id` of the active OpenTelemetry span. Sensitive keys in the logged
 * object and in child bindings are replaced at any depth (see `redactSensitive`).
 *
 * The rule for callers: log `pseudonym`, never `userId`. Redaction is the safety net for
 * structured fields, it cannot see inside message strings.
 */
export function createLogger(options: CreateLoggerOptions): Logger {
  const pseudonymize = options.pseudonymizer
    ? (tenant: string, userId: string) => options.pseudonymizer!.pseudonymize(tenant, userId)
    : undefined;

  const pinoOptions: PinoOptions = {
    level: options.level ?? 'info',
    base: { service: options.service, pid: process.pid, hostname: hostname() },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    // mixin runs on every line and sees the (child) logger, which knows its bound tenant.
    mixin: (_obj, _level, logger) => ({ ...traceFields(), [TENANT]: (logger as TenantCarrier)[TENANT] }),
    mixinMergeStrategy: (mergeObject, mixinObject) => {
      const tenant = (mixinObject as TenantCarrier)[TENANT];
      const redacted = redactSensitive(mergeObject, { pseudonymize, tenant }) as Record<string, unknown>;
      return { ...mixinObject, ...redacted };
    },
  };
  const root = options.destination ? pino(pinoOptions, options.destination) : pino(pinoOptions);

  // Children are created with Object.create(parent), so they inherit this override and every
  // descendant's bindings pass through redaction too.
  const originalChild = root.child;
  const redactingChild = function (this: Logger, bindings: Record<string, unknown>, childOptions?: object) {
    const inherited = (this as TenantCarrier)[TENANT];
    const tenant = bindingTenant(bindings) ?? inherited;
    const safe = redactSensitive(bindings, { pseudonymize, tenant }) as Record<string, unknown>;
    const child = originalChild.call(this, safe, childOptions) as unknown as Logger & TenantCarrier;
    if (tenant !== inherited && tenant !== undefined) child[TENANT] = tenant;
    return child;
  };
  (root as unknown as { child: typeof redactingChild }).child = redactingChild;
  return root;
}

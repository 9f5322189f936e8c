import { z } from 'zod';
import { connectNatsBus } from './nats/bus.js';
import { keyMatchesCertificate, pemFile } from './tls-files.js';
import type { EventBus } from './types.js';

const positiveInt = (what: string) => {
  const error = `expected ${what} (a whole number > 0)`;
  return z.number({ error }).int({ error }).positive({ error });
};

const serverError = 'expected NATS server URLs, comma-separated (nats://nats:4222,nats://nats-2:4222) or a list';
const server = z.string({ error: serverError }).regex(/^\S+$/, { error: serverError });

/**
 * The `events` section every standalone service that publishes or consumes events reads (env
 * `AIMASS_EVENTS__KIND`, `AIMASS_EVENTS__SERVERS`, ...), so operators configure each service's
 * bus the same way. `kind: none` (the default) means no bus: a service runs without events. The
 * one-process mode ignores the section: the runner hands each service its in-process bus.
 */
export const eventsConfigSchema = z
  .strictObject({
    kind: z.enum(['none', 'nats'], { error: 'expected none or nats' }).default('none'),
    /** NATS servers (kind nats): a list, or one string of comma-separated URLs (the form a variable takes). */
    servers: z
      .union([z.string({ error: serverError }), z.array(z.string({ error: serverError }))], { error: serverError })
      .transform((s) => (Array.isArray(s) ? s : s.split(',')).map((part) => part.trim()).filter((part) => part.length > 0))
      .pipe(z.array(server).min(1, { error: serverError }))
      .optional(),
    /** Bound on the first connect; the client then reconnects forever. */
    connectTimeoutMs: positiveInt('a duration in milliseconds').optional(),
    /** Pause between reconnect attempts. */
    reconnectTimeWaitMs: positiveInt('a duration in milliseconds').optional(),
    /** Time to wait for one publish acknowledgement. */
    publishTimeoutMs: positiveInt('a duration in milliseconds').optional(),
    /** Further publish attempts (same message id, so never stored twice) after a timeout. */
    publishRetries: z.number({ error: 'expected a whole number >= 0' }).int({ error: 'expected a whole number >= 0' }).min(0, { error: 'expected a whole number >= 0' }).optional(),
    publishRetryDelayMs: positiveInt('a duration in milliseconds').optional(),
    /** Timeout of JetStream management requests (streams, consumers, pending counts). */
    apiTimeoutMs: positiveInt('a duration in milliseconds').optional(),
    /** Lifetime of one pull request of a consumer group (at least 1000). */
    pullExpiresMs: positiveInt('a duration in milliseconds').min(1000, { error: 'expected a duration in milliseconds >= 1000' }).optional(),
    /** Token authentication. */
    token: z.string().min(1).optional(),
    /** User and password authentication (both or neither). */
    user: z.string().min(1).optional(),
    password: z.string().min(1).optional(),
    /**
     * TLS to the servers: PEM files (a mounted Kubernetes Secret), checked when the configuration
     * is loaded. With it the client refuses a server that does not offer TLS; the files are read
     * again at each (re)connect, so a renewed certificate is used from the next reconnect on.
     */
    tls: z
      .strictObject({
        /** CA certificates the servers' certificates must chain to; the system's CAs when unset. */
        caFile: pemFile('certificate').optional(),
        /** Client certificate (servers with `verify: true`), with keyFile. */
        certFile: pemFile('certificate').optional(),
        keyFile: pemFile('private key').optional(),
      })
      .superRefine((t, ctx) => {
        if (t.certFile !== undefined && t.keyFile !== undefined && keyMatchesCertificate(t.certFile, t.keyFile) === false) {
          ctx.addIssue({ code: 'custom', path: ['keyFile'], message: `"${t.keyFile}" is not the private key of the certificate in "${t.certFile}"` });
        }
      })
      .optional(),
  })
  .refine((c) => c.kind !== 'nats' || c.servers !== undefined, {
    error: 'set events.servers (AIMASS_EVENTS__SERVERS) to the NATS server URLs for events.kind nats',
    path: ['servers'],
  })
  .refine((c) => c.kind !== 'none' || c.servers === undefined, {
    // A forgotten kind would silently run the service without its events.
    error: 'events.servers is set but events.kind is none: set events.kind (AIMASS_EVENTS__KIND) to nats, or remove the servers',
    path: ['kind'],
  })
  .refine((c) => (c.user === undefined) === (c.password === undefined), {
    error: 'set both events.user and events.password, or neither',
    path: ['password'],
  })
  .refine((c) => (c.tls?.certFile === undefined) === (c.tls?.keyFile === undefined), {
    error: 'set both events.tls.certFile and events.tls.keyFile (client certificate), or neither',
    path: ['tls'],
  });

export type EventsConfig = z.output<typeof eventsConfigSchema>;
export type EventsConfigInput = z.input<typeof eventsConfigSchema>;

/**
 * Opens the bus an `events` section describes: a NATS JetStream connection (reconnecting
 * forever), or undefined for `kind: none`. `name` names the connection in the server's
 * monitoring (the service name).
 */
export async function openConfiguredBus(config: EventsConfig, options: { name: string }): Promise<EventBus | undefined> {
  if (config.kind === 'none') return undefined;
  const tls = config.tls ? { ...config.tls } : undefined;
  return connectNatsBus({
    servers: config.servers!,
    name: options.name,
    connectTimeoutMs: config.connectTimeoutMs,
    reconnectTimeWaitMs: config.reconnectTimeWaitMs,
    publishTimeoutMs: config.publishTimeoutMs,
    publishRetries: config.publishRetries,
    publishRetryDelayMs: config.publishRetryDelayMs,
    apiTimeoutMs: config.apiTimeoutMs,
    pullExpiresMs: config.pullExpiresMs,
    connection: {
      ...(config.token !== undefined ? { token: config.token } : {}),
      ...(config.user !== undefined ? { user: config.user, pass: config.password } : {}),
      ...(tls !== undefined ? { tls } : {}),
    },
  });
}

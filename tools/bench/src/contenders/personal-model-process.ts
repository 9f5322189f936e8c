import { SERVICE_NAMES } from '@aimass/proto';
import type { PersonalModelsStats } from '@aimass/personal-model';
import { builtEntry } from '../built-entry.js';
import type { HostReply, HostRequest } from './personal-model-protocol.js';
import { startServiceProcess, type ServiceProcess } from './service-process.js';

type Reply<T extends HostReply['type']> = Extract<HostReply, { type: T }>;

/** Distributes a request without its id (each variant keeps its own fields). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/**
 * personal-model in its own process (personal-model-host.ts: the service as its main.ts wires
 * it), with a channel to read its cache counters and time cold loads inside it.
 */
export class PersonalModelProcess {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (r: HostReply) => void; reject: (e: Error) => void }>();

  private constructor(readonly service: ServiceProcess) {
    service.child.on('message', (message: HostReply) => {
      const waiter = this.waiting.get(message.id);
      if (waiter === undefined) return;
      this.waiting.delete(message.id);
      if (message.type === 'failed') waiter.reject(new Error(`personal-model process: ${message.message}`));
      else waiter.resolve(message);
    });
    service.child.on('exit', (code, signal) => {
      for (const waiter of this.waiting.values()) waiter.reject(new Error(`personal-model process exited (code ${code}, signal ${signal})`));
      this.waiting.clear();
    });
  }

  /** Starts it with `env` (AIMASS_* configuration) on `port`; ready when its health check says SERVING. */
  static async start(env: Readonly<Record<string, string>>, port: number): Promise<PersonalModelProcess> {
    const service = await startServiceProcess({
      mainPath: builtEntry('contenders/personal-model-host.js'),
      port,
      env,
      ready: { kind: 'health', service: SERVICE_NAMES.personalModel },
      startTimeoutMs: 60_000,
    });
    return new PersonalModelProcess(service);
  }

  get address(): string {
    return this.service.address;
  }

  private ask<T extends HostReply['type']>(request: WithoutId<HostRequest>): Promise<Reply<T>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (r: HostReply) => void, reject });
      this.service.child.send({ ...request, id } as HostRequest);
    });
  }

  async stats(): Promise<{ stats: PersonalModelsStats; maxBytes: number; revalidateMs: number }> {
    const r = await this.ask<'stats'>({ type: 'stats' });
    return { stats: r.stats, maxBytes: r.maxBytes, revalidateMs: r.revalidateMs };
  }

  async warm(tenant: string, users: readonly string[]): Promise<number> {
    return (await this.ask<'warmed'>({ type: 'warm', tenant, users })).ms;
  }

  coldLoads(tenant: string, users: readonly string[]): Promise<Reply<'cold-loads'>> {
    return this.ask<'cold-loads'>({ type: 'cold-loads', tenant, users });
  }

  close(): Promise<void> {
    return this.service.close();
  }
}

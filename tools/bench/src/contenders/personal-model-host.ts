// Entry of the personal-model process the store benchmark runs (child_process.fork). Wired as
// services/personal-model/src/main.ts wires the service (configuration from AIMASS_* through its
// own schema, the store through openConfiguredStore, startPersonalModel), plus an IPC channel:
// the service keeps its cache counters in memory and exposes them to code in its process only
// (RunningPersonalModel.stats()), so the bench reads them, and times cold loads where they
// happen, through this channel. The gRPC traffic is the service's own, unchanged.
import { performance } from 'node:perf_hooks';
import { PersonalModel } from '@aimass/ml';
import { createLogger, failFast, loadConfig } from '@aimass/platform';
import { serviceConfigSchema, startPersonalModel } from '@aimass/personal-model';
import { openConfiguredStore } from '@aimass/storage';
import type { HostReply, HostRequest } from './personal-model-protocol.js';

const config = (() => {
  try {
    return loadConfig(serviceConfigSchema);
  } catch (err) {
    return failFast(err);
  }
})();
const logger = createLogger({ service: config.serviceName, level: config.log.level });
const store = await openConfiguredStore(config.store).catch((err: unknown) => failFast(err));
const service = await startPersonalModel(config, logger, { store }).catch((err: unknown) => failFast(err));

function reply(message: HostReply): void {
  process.send?.(message);
}

/** Time of `fn` in milliseconds. */
async function timed(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function handle(request: HostRequest): Promise<HostReply> {
  switch (request.type) {
    case 'stats':
      return { type: 'stats', id: request.id, stats: service.stats(), maxBytes: config.personalModel.cache.maxBytes, revalidateMs: config.personalModel.cache.revalidateMs };
    case 'warm': {
      const ms = await timed(async () => {
        for (const user of request.users) await service.models.current(request.tenant, user);
      });
      return { type: 'warmed', id: request.id, ms };
    }
    case 'cold-loads': {
      // The service's own load path (PersonalModels.current: pointer read, version read,
      // deserialize, cache insert), one user at a time, each evicted first so it is a miss.
      const total: number[] = [];
      for (const user of request.users) {
        service.models.evict(request.tenant, user);
        total.push(await timed(() => service.models.current(request.tenant, user)));
      }
      // The same path in its parts, on the same users evicted again: where the time goes.
      const pointer: number[] = [];
      const version: number[] = [];
      const decode: number[] = [];
      const bytes: number[] = [];
      for (const user of request.users) {
        service.models.evict(request.tenant, user);
        let current: Awaited<ReturnType<typeof service.store.pointer>>;
        pointer.push(await timed(async () => (current = await service.store.pointer(request.tenant, user))));
        if (current === undefined) throw new Error(`user ${user} has no model in the store`);
        let stored: Awaited<ReturnType<typeof service.store.version>>;
        const at = current.version;
        version.push(await timed(async () => (stored = await service.store.version(request.tenant, user, at))));
        if (stored === undefined) throw new Error(`user ${user} has a pointer without its version`);
        const parameters = stored.parameters;
        bytes.push(parameters.byteLength);
        decode.push(await timed(() => PersonalModel.deserialize(parameters, config.personalModel.learner)));
      }
      return { type: 'cold-loads', id: request.id, total, pointer, version, decode, bytes };
    }
  }
}

process.on('message', (request: HostRequest) => {
  handle(request).then(reply, (err: unknown) => reply({ type: 'failed', id: request.id, message: err instanceof Error ? err.message : String(err) }));
});

process.on('disconnect', () => {
  void service
    .stop()
    .then(() => store.close())
    .finally(() => process.exit(0));
});
process.on('SIGTERM', () => {
  void service
    .stop()
    .then(() => store.close())
    .finally(() => process.exit(0));
});

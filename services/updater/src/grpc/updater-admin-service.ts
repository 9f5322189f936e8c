import { DataKeyError, TenantKeyError } from '@aimass/crypto';
import type { PayloadSealer } from '@aimass/events';
import { DeadlineExceededError, FailedPreconditionError, InvalidArgumentError, NotFoundError, UnavailableError, tenantFromMetadata, unary, type Pseudonymizer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { GeneralModelClient } from '../adapters/general-model-client.js';
import type { PersonalModelClient } from '../adapters/personal-model-client.js';
import { storeUnavailable, type UpdaterStore } from '../adapters/updater-store.js';
import { ExportCollector, checkExportPseudonym, exportedFeedback } from '../domain/export.js';
import { openInput } from '../domain/feedback.js';
import { describeGeneral, servedVersion } from '../domain/general.js';
import type { GeneralRef } from '../domain/ids.js';
import { jobToProto, orderJobs, refitPendingFor, type RefitJob } from '../domain/jobs.js';
import { splitAtWatermark } from '../domain/pending.js';
import type { RefitJobs } from '../runtime/refit-jobs.js';

export interface UpdaterAdminServiceOptions {
  readonly store: UpdaterStore;
  readonly personal: PersonalModelClient;
  readonly general: GeneralModelClient;
  readonly jobs: RefitJobs;
  readonly pseudonymizer: Pseudonymizer;
  /** The general model followed (`updater.generalModel.model`); empty: the general model's default. */
  readonly defaultModel: string;
  /** Events of the feedback consumer group not yet taken in (all tenants); undefined when unknown. */
  readonly consumerLag: () => Promise<number | undefined>;
  /** Opens the stored inputs for ExportFeedback. */
  readonly sealer: PayloadSealer;
  /** ExportFeedback's bounds (`updater.export`). */
  readonly exportLimits: { readonly maxEntries: number; readonly maxBytes: number };
}

/** Bytes of a user id. */
const MAX_USER_ID_BYTES = 256;
/** Jobs GetTrainingState lists. */
const JOBS_LISTED = 20;
/** Unapplied entries counted one by one for a user's state (the rest is reported as this many). */
const USER_PENDING_SCAN = 1000;

function checkUserId(value: string): string {
  if (value === '') throw new InvalidArgumentError("user_id is required: the enterprise's id of the user", { field: 'user_id' });
  if (Buffer.byteLength(value, 'utf8') > MAX_USER_ID_BYTES) throw new InvalidArgumentError(`user_id is longer than ${MAX_USER_ID_BYTES} bytes`, { field: 'user_id' });
  return value;
}

/**
 * The refit target a request names: an empty name means the followed model, an empty version the
 * version it serves now. A named version must be loaded in the general model (the refit runs it).
 */
async function resolveTarget(general: GeneralModelClient, requested: v1.ModelRef | undefined, defaultModel: string): Promise<GeneralRef> {
  const models = await general.listModels();
  const version = requested?.version ?? '';
  let name = requested?.name || defaultModel;
  if (version === '') {
    const served = servedVersion(models, name);
    if (!served) throw new FailedPreconditionError(`no version of general model ${name || '(default)'} is loaded: load one in the general model first`);
    return served;
  }
  if (name === '') name = servedVersion(models, '')?.name ?? '';
  const found = models.find((m) => m.model?.name === name && m.model.version === version);
  if (!found) {
    const known = models.filter((m) => m.model?.name === name).map((m) => m.model!.version);
    throw new NotFoundError(`general model ${describeGeneral({ name, version })} is not in the general model's repository (versions: ${known.join(', ') || 'none'})`);
  }
  if (found.state !== v1.ModelState.MODEL_STATE_READY) {
    throw new FailedPreconditionError(`general model ${describeGeneral({ name, version })} is not loaded (${v1.ModelState[found.state]}): load it in the general model first`);
  }
  return { name, version };
}

/** A key service that cannot answer now: the export is retried, never answered with inputs missing. */
function keysUnavailable(err: unknown): never {
  if (err instanceof DeadlineExceededError || err instanceof DataKeyError || err instanceof TenantKeyError) {
    throw new UnavailableError(`the user's data key cannot be read now (${err.message}): retry the export`, { cause: err, retryAfterMs: 1000 });
  }
  throw err;
}

export function createUpdaterAdminService(options: UpdaterAdminServiceOptions): v1.UpdaterAdminServiceServer {
  const { store, personal, general, jobs, pseudonymizer, defaultModel } = options;

  const activeJobs = async (tenant: string): Promise<RefitJob[]> => (await store.activeJobs(tenant)).map((r) => r.job);

  return {
    refitUser: unary<v1.RefitUserRequest, v1.RefitUserResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const pseudonym = pseudonymizer.pseudonymize(tenant, checkUserId(req.userId));
      try {
        if (!(await store.state(tenant, pseudonym))) throw new NotFoundError('the user has no feedback history to refit from');
        const target = await resolveTarget(general, req.generalModel, defaultModel);
        const job = await jobs.create(tenant, { kind: 'user', pseudonym, onlyStale: false, target });
        ctx.logger.info({ tenant, pseudonym, jobId: job.jobId, target: describeGeneral(target) }, 'refit of one user requested');
        return { job: jobToProto(job) };
      } catch (err) {
        storeUnavailable(err);
      }
    }),

    refitAll: unary<v1.RefitAllRequest, v1.RefitAllResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      try {
        const target = await resolveTarget(general, req.generalModel, defaultModel);
        const job = await jobs.create(tenant, { kind: 'all', onlyStale: req.onlyStale, target });
        ctx.logger.info({ tenant, jobId: job.jobId, onlyStale: req.onlyStale, usersTotal: job.usersTotal, target: describeGeneral(target) }, 'refit of every user requested');
        return { job: jobToProto(job) };
      } catch (err) {
        storeUnavailable(err);
      }
    }),

    getTrainingState: unary<v1.GetTrainingStateRequest, v1.GetTrainingStateResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const pseudonym = req.userId === '' ? undefined : pseudonymizer.pseudonymize(tenant, checkUserId(req.userId));
      try {
        const [unapplied, lag, active, recent] = await Promise.all([store.countUnapplied(tenant), options.consumerLag(), activeJobs(tenant), store.recentJobs(tenant, JOBS_LISTED)]);
        const byId = new Map<string, RefitJob>();
        for (const j of [...active, ...recent]) byId.set(j.jobId, j);
        const listed = orderJobs([...byId.values()]).slice(0, JOBS_LISTED);

        let user: v1.UserTrainingState | undefined;
        if (pseudonym) {
          const model = await personal.model(tenant, pseudonym);
          const entries = await store.unapplied(tenant, pseudonym, USER_PENDING_SCAN);
          const { fresh } = splitAtWatermark(entries, model.watermark);
          user = {
            userPseudonym: pseudonym,
            currentVersion: model.version,
            generalModel: model.general ? { name: model.general.name, version: model.general.version } : undefined,
            pendingEvents: fresh.length,
            lastAppliedSequence: model.watermark,
            lastTrainedAt: model.writtenAt,
            refitPending: active.some((j) => refitPendingFor(j, pseudonym, model.general)),
          };
        }
        return { pendingEvents: unapplied + (lag ?? 0), user, jobs: listed.map(jobToProto) };
      } catch (err) {
        storeUnavailable(err);
      }
    }),

    exportFeedback: unary<v1.ExportFeedbackRequest, v1.ExportFeedbackResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const pseudonym = checkExportPseudonym(req.userPseudonym);
      const { maxEntries, maxBytes } = options.exportLimits;
      try {
        const { entries, total } = await store.exportHistory(tenant, pseudonym, maxEntries);
        const collector = new ExportCollector(maxBytes);
        let unreadable = 0;
        for (const entry of entries) {
          const input = await openInput(entry, options.sealer).catch(keysUnavailable);
          if (!input) unreadable++;
          if (!collector.add(exportedFeedback(entry, input))) break;
        }
        const response = collector.response(total);
        ctx.logger.info({ tenant, pseudonym, entries: response.feedback.length, omitted: response.omitted, unreadable }, 'feedback history exported');
        return response;
      } catch (err) {
        storeUnavailable(err);
      }
    }),
  };
}

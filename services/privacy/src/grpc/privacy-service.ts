import { consentStateToProto, purposeToProto, type ConsentPurpose } from '@aimass/consent';
import { InvalidArgumentError, tenantFromMetadata, unary, type CallContext, type Pseudonymizer } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { ConsentRecord } from '../domain/chain.js';
import { overallStatus, receiptLines, validateErase, validateErasureId, type ErasureState, type Tombstone } from '../domain/erasure.js';
import { purposesAsked } from '../domain/decisions.js';
import { exportContent, validateExport } from '../domain/export.js';
import { validatePurpose, validatePurposes, validateSetConsent, validateUserId, validateUserReference, type RequestLimits } from '../domain/validation.js';
import type { ConsentService, Decision } from '../runtime/consent.js';
import type { ErasureService } from '../runtime/erasure.js';
import type { ExportService } from '../runtime/export.js';

export interface PrivacyServiceOptions {
  readonly consent: ConsentService;
  readonly pseudonymizer: Pseudonymizer;
  readonly limits: RequestLimits & { readonly maxReasonBytes: number };
  readonly erasure: ErasureService;
  readonly exporter: ExportService;
  readonly history: { readonly defaultPageSize: number; readonly maxPageSize: number };
}

export function recordToProto(r: ConsentRecord, verified: boolean): v1.ConsentRecord {
  return {
    sequence: r.sequence,
    purpose: purposeToProto(r.purpose),
    state: consentStateToProto(r.state),
    policyVersion: r.policyVersion,
    source: r.source,
    recordedAt: r.recordedAt,
    prevHash: r.prevHash,
    hash: r.hash,
    verified,
  };
}

const ERASURE_STATUS: Record<ErasureState, v1.ErasureStatus> = {
  pending: v1.ErasureStatus.ERASURE_STATUS_PENDING,
  completed: v1.ErasureStatus.ERASURE_STATUS_COMPLETED,
  failed: v1.ErasureStatus.ERASURE_STATUS_FAILED,
};

export function receiptToProto(t: Tombstone): v1.ErasureReceipt {
  return {
    erasureId: t.erasureId,
    userPseudonym: t.pseudonym,
    status: ERASURE_STATUS[overallStatus(t)],
    requestedAt: t.requestedAt,
    keyDestroyedAt: t.keyDestroyedAt,
    completedAt: t.completedAt,
    confirmations: receiptLines(t).map((l) => ({ service: l.service, status: ERASURE_STATUS[l.status], confirmedAt: l.confirmedAt, itemsDeleted: l.itemsDeleted, detail: l.detail })),
  };
}

function decisionToProto(d: Decision): v1.ConsentDecision {
  return {
    purpose: purposeToProto(d.purpose),
    state: consentStateToProto(d.state),
    isDefault: d.isDefault,
    record: d.record ? recordToProto(d.record, true) : undefined,
  };
}

interface PageToken {
  /** Last sequence returned. */
  readonly after: number;
  /** The purpose filter the token belongs to ('' for all). */
  readonly purpose: string;
}

function encodeToken(t: PageToken): string {
  return Buffer.from(JSON.stringify({ v: 1, a: t.after, p: t.purpose })).toString('base64url');
}

function decodeToken(token: string, purpose: string): PageToken {
  const field = 'page.page_token';
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const t = parsed as { v?: unknown; a?: unknown; p?: unknown } | undefined;
  if (!t || t.v !== 1 || typeof t.a !== 'number' || !Number.isSafeInteger(t.a) || t.a < 0 || typeof t.p !== 'string') {
    throw new InvalidArgumentError('page.page_token is not a token this service gave: send the next_page_token of the previous page, or none for the first', { field });
  }
  if (t.p !== purpose) throw new InvalidArgumentError('page.page_token belongs to a request for another purpose: tokens are only valid for the same request', { field });
  return { after: t.a, purpose: t.p };
}

export function createPrivacyService(o: PrivacyServiceOptions): v1.PrivacyServiceServer {
  const { consent, pseudonymizer, limits } = o;
  const bounds = (ctx: CallContext) => ({ deadline: ctx.deadline?.getTime(), signal: ctx.signal });

  return {
    setConsent: unary<v1.SetConsentRequest, v1.SetConsentResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const { userId, change, idempotencyKey } = validateSetConsent(req, limits, new Date());
      const owner = { tenant, userPseudonym: pseudonymizer.pseudonymize(tenant, userId) };
      const result = await consent.set(owner, change, idempotencyKey, bounds(ctx));
      return { record: recordToProto(result.record, true), changed: result.changed, duplicate: result.duplicate };
    }),

    getConsent: unary<v1.GetConsentRequest, v1.GetConsentResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const purposes = purposesAsked(validatePurposes(req.purposes));
      const user = validateUserReference(req, limits);
      const owner = { tenant, userPseudonym: 'pseudonym' in user ? user.pseudonym : pseudonymizer.pseudonymize(tenant, user.userId) };
      const decisions = await consent.current(owner, purposes);
      return { decisions: decisions.map(decisionToProto) };
    }),

    getConsentHistory: unary<v1.GetConsentHistoryRequest, v1.GetConsentHistoryResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const userPseudonym = pseudonymizer.pseudonymize(tenant, validateUserId(req.userId, limits));
      const purpose: ConsentPurpose | undefined = req.purpose === v1.Purpose.PURPOSE_UNSPECIFIED ? undefined : validatePurpose(req.purpose);
      const requested = req.page?.pageSize ?? 0;
      const pageSize = Math.min(requested === 0 ? o.history.defaultPageSize : requested, o.history.maxPageSize);
      const after = req.page?.pageToken ? decodeToken(req.page.pageToken, purpose ?? '').after : 0;

      // The whole chain is verified on every page: each page's claim covers everything before it.
      const records = await consent.history({ tenant, userPseudonym });
      const matching = records.filter((r) => r.sequence > after && (purpose === undefined || r.purpose === purpose));
      const page = matching.slice(0, pageSize);
      const last = page.at(-1);
      return {
        records: page.map((r) => recordToProto(r, true)),
        nextPageToken: last && matching.length > page.length ? encodeToken({ after: last.sequence, purpose: purpose ?? '' }) : '',
        chainVerified: true,
      };
    }),

    erase: unary<v1.EraseRequest, v1.EraseResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const { userId, reason } = validateErase(req, limits);
      const { tombstone, duplicate } = await o.erasure.erase({ tenant, userPseudonym: pseudonymizer.pseudonymize(tenant, userId) }, reason, bounds(ctx));
      return { erasureId: tombstone.erasureId, status: ERASURE_STATUS[overallStatus(tombstone)], duplicate };
    }),
    getErasureReceipt: unary<v1.GetErasureReceiptRequest, v1.GetErasureReceiptResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      return { receipt: receiptToProto(await o.erasure.receipt(tenant, validateErasureId(req.erasureId))) };
    }),
    export: unary<v1.ExportRequest, v1.ExportResponse>(async (req, ctx) => {
      const tenant = tenantFromMetadata(ctx.metadata);
      const { userId, format } = validateExport(req, limits);
      const doc = await o.exporter.export({ tenant, userPseudonym: pseudonymizer.pseudonymize(tenant, userId) }, bounds(ctx));
      return { content: exportContent(doc, format), generatedAt: new Date(doc.generatedAt) };
    }),
  };
}

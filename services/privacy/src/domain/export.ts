/**
 * The Export document: everything held about one person, as plain JSON (times as ISO-8601 UTC,
 * names in lower case). Pure functions from what privacy and the other services answered; the
 * runtime gathers the parts (runtime/export.ts).
 */
import { InvalidArgumentError } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { ConsentRecord } from './chain.js';
import type { CurrentDecision } from './decisions.js';
import { overallStatus, receiptLines, type ErasureState, type Tombstone } from './erasure.js';
import { validateUserId, type RequestLimits } from './validation.js';

export type ExportFormatName = 'json' | 'structured';

export interface ExportedDecision {
  readonly purpose: string;
  readonly state: string;
  /** No decision recorded: the tenant's default applies. */
  readonly isDefault: boolean;
  /** The history record the decision rests on; absent when defaulted. */
  readonly recordSequence?: number;
}

export interface ExportedConsentRecord {
  readonly sequence: number;
  readonly purpose: string;
  readonly state: string;
  readonly previousState: string;
  readonly policyVersion: string;
  readonly source: string;
  readonly decidedAt: string;
  readonly recordedAt: string;
  /** Empty for the first record. */
  readonly prevHash: string;
  readonly hash: string;
}

export interface ExportedModelRef {
  readonly name: string;
  readonly version: string;
}

export interface ExportedModelVersion {
  readonly version: number;
  readonly current: boolean;
  readonly model: ExportedModelRef | null;
  /** The general model it was trained on and is paired with. */
  readonly generalModel: ExportedModelRef | null;
  readonly exampleCount: number;
  /** train, refit or rollback. */
  readonly kind: string;
  /** For a rollback, the version whose parameters it restored. */
  readonly restoredFromVersion?: number;
  readonly createdAt: string | null;
  readonly lastAppliedSequence: number;
}

export interface ExportedFeedbackEntry {
  readonly eventId: string;
  readonly streamSequence: number;
  readonly occurredAt: string | null;
  readonly label: string;
  /** Empty for feedback on a direct input. */
  readonly predictionId: string;
  /** The input as given (text, mail, features or raw base64); null when it can no longer be read (its data key was destroyed). */
  readonly input: unknown;
  readonly generalModel: ExportedModelRef | null;
  /** In the user's personal model. */
  readonly applied: boolean;
  /** Why personal-model refused it; empty when it did not. */
  readonly rejected: string;
}

export interface ExportedErasureService {
  readonly service: string;
  readonly status: ErasureState;
  readonly confirmedAt: string | null;
  readonly itemsDeleted: number;
  readonly detail: string;
}

/** The erasure record privacy keeps as proof: what an export of an erased user holds. */
export interface ExportedErasure {
  readonly erasureId: string;
  readonly status: ErasureState;
  readonly reason: string;
  readonly requestedAt: string;
  readonly keyDestroyedAt: string | null;
  readonly completedAt: string | null;
  readonly services: readonly ExportedErasureService[];
}

export interface ExportDocument {
  readonly user: { readonly pseudonym: string };
  readonly generatedAt: string;
  readonly consent?: {
    readonly decisions: readonly ExportedDecision[];
    /** Oldest first; the chain was verified before the export was assembled (it fails otherwise). */
    readonly history: { readonly verified: true; readonly records: readonly ExportedConsentRecord[] };
  };
  /** Every stored version of the personal model, newest first. */
  readonly models?: readonly ExportedModelVersion[];
  /** The stored feedback history, oldest first. */
  readonly feedback?: readonly ExportedFeedbackEntry[];
  /** Feedback entries the updater holds beyond those it returned (0: the list is complete). */
  readonly feedbackOmitted?: number;
  readonly erasure?: ExportedErasure;
}

/** Everything gathered for a user who is not erased. */
export interface ExportParts {
  readonly decisions: readonly CurrentDecision[];
  readonly history: readonly ConsentRecord[];
  readonly models: readonly v1.PersonalModelInfo[];
  readonly feedback: readonly v1.ExportedFeedback[];
  readonly feedbackOmitted: number;
}

const iso = (d: Date | undefined): string | null => (d ? d.toISOString() : null);
const ref = (r: v1.ModelRef | undefined): ExportedModelRef | null => (r ? { name: r.name, version: r.version } : null);

const UPDATE_KINDS: Record<number, string> = {
  [v1.UpdateKind.UPDATE_KIND_TRAIN]: 'train',
  [v1.UpdateKind.UPDATE_KIND_REFIT]: 'refit',
  [v1.UpdateKind.UPDATE_KIND_ROLLBACK]: 'rollback',
};

export function exportedDecision(d: CurrentDecision): ExportedDecision {
  return d.isDefault ? { purpose: d.purpose, state: d.state, isDefault: true } : { purpose: d.purpose, state: d.state, isDefault: false, recordSequence: d.sequence };
}

export function exportedRecord(r: ConsentRecord): ExportedConsentRecord {
  return {
    sequence: r.sequence,
    purpose: r.purpose,
    state: r.state,
    previousState: r.previousState,
    policyVersion: r.policyVersion,
    source: r.source,
    decidedAt: r.decidedAt.toISOString(),
    recordedAt: r.recordedAt.toISOString(),
    prevHash: r.prevHash,
    hash: r.hash,
  };
}

export function exportedModelVersion(m: v1.PersonalModelInfo): ExportedModelVersion {
  return {
    version: m.version,
    current: m.current,
    model: ref(m.model),
    generalModel: ref(m.generalModel),
    exampleCount: m.exampleCount,
    kind: UPDATE_KINDS[m.kind] ?? 'unspecified',
    ...(m.restoredFromVersion > 0 ? { restoredFromVersion: m.restoredFromVersion } : {}),
    createdAt: iso(m.createdAt),
    lastAppliedSequence: m.lastAppliedSequence,
  };
}

export function exportedFeedback(f: v1.ExportedFeedback): ExportedFeedbackEntry {
  return {
    eventId: f.eventId,
    streamSequence: f.streamSequence,
    occurredAt: iso(f.occurredAt),
    label: f.label,
    predictionId: f.predictionId,
    input: f.input ? v1.InputPayload.toJSON(f.input) : null,
    generalModel: ref(f.generalModel),
    applied: f.applied,
    rejected: f.rejected,
  };
}

export function exportedErasure(t: Tombstone): ExportedErasure {
  return {
    erasureId: t.erasureId,
    status: overallStatus(t),
    reason: t.reason,
    requestedAt: t.requestedAt.toISOString(),
    keyDestroyedAt: iso(t.keyDestroyedAt),
    completedAt: iso(t.completedAt),
    services: receiptLines(t).map((l) => ({ service: l.service, status: l.status, confirmedAt: iso(l.confirmedAt), itemsDeleted: l.itemsDeleted, detail: l.detail })),
  };
}

/** The document of a user who is not erased. */
export function exportDocument(pseudonym: string, generatedAt: Date, parts: ExportParts): ExportDocument {
  return {
    user: { pseudonym },
    generatedAt: generatedAt.toISOString(),
    consent: {
      decisions: parts.decisions.map(exportedDecision),
      history: { verified: true, records: parts.history.map(exportedRecord) },
    },
    models: parts.models.map(exportedModelVersion),
    feedback: parts.feedback.map(exportedFeedback),
    feedbackOmitted: parts.feedbackOmitted,
  };
}

/** The document of an erased user: only the erasure record privacy keeps as proof. */
export function erasedExportDocument(pseudonym: string, generatedAt: Date, tombstone: Tombstone): ExportDocument {
  return { user: { pseudonym }, generatedAt: generatedAt.toISOString(), erasure: exportedErasure(tombstone) };
}

/** The document as ExportResponse.content. */
export function exportContent(doc: ExportDocument, format: ExportFormatName): NonNullable<v1.ExportResponse['content']> {
  const text = JSON.stringify(doc, null, 2);
  // Struct takes JSON values only: the parse of the same text is the same document, to the byte.
  return format === 'json' ? { $case: 'json', value: Buffer.from(text, 'utf8') } : { $case: 'document', value: JSON.parse(text) as Record<string, unknown> };
}

/** Used when a call has no deadline (the server refuses those; direct callers in tests). */
const FALLBACK_BUDGET_MS = 10_000;
/** The most kept back from the caller's deadline for privacy's own answer. */
const ANSWER_RESERVE_MS = 250;

/**
 * Until when Export asks the other services: the caller's deadline less a reserve (a fifth of the
 * time left, at most 250 ms), so a slow service is answered as UNAVAILABLE naming it before the
 * caller's own deadline passes, which would only say "deadline exceeded".
 */
export function peerDeadline(deadline: number | undefined, now: number): number {
  const end = deadline ?? now + FALLBACK_BUDGET_MS;
  const remaining = Math.max(0, end - now);
  return end - Math.min(ANSWER_RESERVE_MS, remaining * 0.2);
}

export function validateExport(req: v1.ExportRequest, limits: RequestLimits): { userId: string; format: ExportFormatName } {
  const userId = validateUserId(req.userId, limits);
  switch (req.format) {
    case v1.ExportFormat.EXPORT_FORMAT_UNSPECIFIED:
    case v1.ExportFormat.EXPORT_FORMAT_JSON:
      return { userId, format: 'json' };
    case v1.ExportFormat.EXPORT_FORMAT_STRUCTURED:
      return { userId, format: 'structured' };
    default:
      throw new InvalidArgumentError(`format ${req.format} is not a known export format: EXPORT_FORMAT_JSON or EXPORT_FORMAT_STRUCTURED`, { field: 'format' });
  }
}

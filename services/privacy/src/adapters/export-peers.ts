/**
 * What the other services hold about a user, read for Export over gRPC: personal-model's
 * ListVersions (every stored version, all pages) and the updater's ExportFeedback. Each failure
 * comes back as an error naming the service, its address and what to do; nothing is ever answered
 * in part.
 */
import type { Interceptor } from '@grpc/grpc-js';
import {
  CancelledError,
  DeadlineExceededError,
  DomainError,
  FailedPreconditionError,
  NotFoundError,
  UnavailableError,
  UnimplementedError,
  callUnary,
  createClient,
  tenantMetadata,
} from '@aimass/platform';
import { v1 } from '@aimass/proto';
import type { ChainOwner } from '../domain/chain.js';

/** Where and until when a peer may be asked. */
export interface PeerBounds {
  /** Epoch milliseconds: the caller's deadline, less what privacy needs to answer. */
  readonly deadline: number;
  readonly signal?: AbortSignal | undefined;
}

/** A peer service's address: configured, or resolved when asked (the one-process runner's addressOf). */
export interface PeerAddress {
  /** The service's name in messages (`personal-model`, `updater`). */
  readonly service: string;
  /** The configuration key and variable that set it. */
  readonly setting: string;
  readonly variable: string;
  resolve(): string | undefined;
}

export class PeerNotConfiguredError extends FailedPreconditionError {}

/** The address, or FAILED_PRECONDITION naming the variable that sets it. */
export function peerAddress(peer: PeerAddress): string {
  const address = peer.resolve();
  if (!address) {
    throw new PeerNotConfiguredError(`Export needs the ${peer.service} service's address to read what it holds: set ${peer.setting} (${peer.variable}) to its gRPC host:port`);
  }
  return address;
}

/**
 * A peer's failure as Export answers it. Not serving the method (UNIMPLEMENTED) is a deployment
 * fault: FAILED_PRECONDITION. Everything else, unreachable and slow included, is UNAVAILABLE
 * naming the service: retrying Export later can succeed, and no document is answered without it.
 */
function peerFailure(peer: PeerAddress, address: string, method: string, err: unknown, callerSignal: AbortSignal | undefined): Error {
  // Our own caller went away: its cancellation, not the peer's fault.
  if (callerSignal?.aborted && callerSignal.reason instanceof Error) return callerSignal.reason;
  if (err instanceof UnimplementedError) {
    return new FailedPreconditionError(
      `${peer.service} at ${address} does not serve ${method}: check that ${peer.setting} (${peer.variable}) points at the ${peer.service} service, at a version that has ${method}`,
      { cause: err },
    );
  }
  const why =
    err instanceof DeadlineExceededError || err instanceof CancelledError
      ? 'did not answer within the call deadline'
      : err instanceof DomainError
        ? `answered ${err.kind.toUpperCase()}: ${err.message}`
        : `failed: ${err instanceof Error ? err.message : String(err)}`;
  return new UnavailableError(`${peer.service} at ${address} ${why} (${method}); the export is not assembled without it: retry Export`, { cause: err, retryAfterMs: 1000 });
}

const RETRY = { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 500 } as const;

/** A gRPC client per address (an address resolved when asked may change between calls). */
class Clients<C extends { close(): void }> {
  readonly #clients = new Map<string, C>();
  constructor(private readonly make: (address: string) => C) {}
  get(address: string): C {
    let client = this.#clients.get(address);
    if (!client) {
      client = this.make(address);
      this.#clients.set(address, client);
    }
    return client;
  }
  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

/** personal-model's versions of a user's model, for Export. */
export class PersonalModelExportSource {
  readonly #peer: PeerAddress;
  readonly #maxPages: number;
  readonly #pageSize: number;
  readonly #clients: Clients<v1.PersonalModelServiceClient>;

  /**
   * `pageSize`: versions asked per ListVersions page (the service may cap it); 100 by default.
   * `interceptors`: client interceptors (privacy's service token).
   */
  constructor(peer: PeerAddress, options: { maxPages: number; pageSize?: number | undefined; interceptors?: readonly Interceptor[] | undefined }) {
    this.#clients = new Clients((address) =>
      createClient(v1.PersonalModelServiceClient, { address, idempotentMethods: ['ListVersions'], retry: RETRY, interceptors: options.interceptors }),
    );
    this.#peer = peer;
    this.#maxPages = options.maxPages;
    this.#pageSize = options.pageSize ?? 100;
  }

  /** Throws FAILED_PRECONDITION when the address is not configured. */
  address(): string {
    return peerAddress(this.#peer);
  }

  /** Every stored version, newest first; none when the user has no model. */
  async versions(owner: ChainOwner, bounds: PeerBounds): Promise<v1.PersonalModelInfo[]> {
    const address = this.address();
    const client = this.#clients.get(address);
    const versions: v1.PersonalModelInfo[] = [];
    let pageToken = '';
    for (let page = 0; page < this.#maxPages; page++) {
      let res: v1.ListVersionsResponse;
      try {
        res = await callUnary(
          client.listVersions.bind(client),
          { userPseudonym: owner.userPseudonym, page: { pageSize: this.#pageSize, pageToken } },
          { deadline: bounds.deadline, signal: bounds.signal, metadata: tenantMetadata(owner.tenant) },
        );
      } catch (err) {
        // "the user has no personal model": nothing held. Later pages vanishing means the model
        // was deleted while it was read: a retry gives a consistent answer.
        if (err instanceof NotFoundError && page === 0) return [];
        throw peerFailure(this.#peer, address, 'ListVersions', err, bounds.signal);
      }
      versions.push(...res.versions);
      if (!res.nextPageToken) return versions;
      pageToken = res.nextPageToken;
    }
    throw new UnavailableError(`${this.#peer.service} at ${address} answered more than ${this.#maxPages} pages of versions (ListVersions); raise privacy.export.maxModelPages if that is real`);
  }

  close(): void {
    this.#clients.close();
  }
}

/** The updater's stored feedback history of a user, for Export. */
export class UpdaterExportSource {
  readonly #peer: PeerAddress;
  readonly #clients: Clients<v1.UpdaterAdminServiceClient>;

  /** `interceptors`: client interceptors (privacy's service token). */
  constructor(peer: PeerAddress, options: { interceptors?: readonly Interceptor[] | undefined } = {}) {
    this.#clients = new Clients((address) =>
      createClient(v1.UpdaterAdminServiceClient, { address, idempotentMethods: ['ExportFeedback'], retry: RETRY, interceptors: options.interceptors }),
    );
    this.#peer = peer;
  }

  address(): string {
    return peerAddress(this.#peer);
  }

  /** Oldest first, and how many entries the updater held back (its per-call cap). */
  async feedback(owner: ChainOwner, bounds: PeerBounds): Promise<{ entries: v1.ExportedFeedback[]; omitted: number }> {
    const address = this.address();
    const client = this.#clients.get(address);
    try {
      const res = await callUnary(
        client.exportFeedback.bind(client),
        { userPseudonym: owner.userPseudonym },
        { deadline: bounds.deadline, signal: bounds.signal, metadata: tenantMetadata(owner.tenant) },
      );
      return { entries: res.feedback, omitted: res.omitted };
    } catch (err) {
      if (err instanceof NotFoundError) return { entries: [], omitted: 0 };
      throw peerFailure(this.#peer, address, 'ExportFeedback', err, bounds.signal);
    }
  }

  close(): void {
    this.#clients.close();
  }
}

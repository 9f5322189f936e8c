import type { AuthConfigInput } from '@aimass/auth';
import type { EventBus } from '@aimass/events';
import type { Logger } from '@aimass/platform';
import type { DocumentStore } from '@aimass/storage';

/** What the one-process runner hands each service: the same ports a cluster deployment wires up. */
export interface EmbeddedEnvironment {
  /** Directory for this run's files (SQLite stores, the event journal, model repository). */
  readonly dataDir: string;
  readonly logger: Logger;
  /** The in-process event bus shared by every embedded service. */
  readonly bus: EventBus;
  /** The service's own SQLite store, `<dataDir>/<name>.sqlite` (one file per service, as in the cluster). */
  openStore(name: string): Promise<DocumentStore>;
  /** Host and port the service should listen on. */
  readonly host: string;
  readonly port: number;
  /** host:port of a service started before this one (the registry lists services in dependency order). */
  addressOf(name: string): string;
  /**
   * The run's `auth` section (AIMASS_AUTH__*, read once by the runner, with its one-process
   * defaults in mode api-keys: a generated internal token secret, the run's fusion as the
   * credential service), for the service's `startX` as `auth`. Absent: mode none.
   */
  readonly auth?: AuthConfigInput | undefined;
}

export interface RunningService {
  readonly name: string;
  /** host:port where its gRPC server listens. */
  readonly address: string;
  /** Fully-qualified gRPC service names it serves, for the runner's health endpoint. */
  readonly grpcServices: readonly string[];
  /** Drain and release everything it holds. */
  stop(): Promise<void>;
}

/** A service that can run inside the one-process mode; each service package exports one. */
export interface EmbeddedService {
  readonly name: string;
  /**
   * Port = the runner's `servicePortBase` + this offset. Fixed per service, so a service that must
   * start earlier (privacy: the others ask it for consent and keys) does not move everyone's port.
   * Defaults to the service's position in the registry.
   */
  readonly portOffset?: number | undefined;
  start(env: EmbeddedEnvironment): Promise<RunningService>;
}

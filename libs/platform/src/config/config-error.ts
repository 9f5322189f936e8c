export interface ConfigProblem {
  /** Dotted key path, e.g. `grpc.port`; empty for the file as a whole. */
  path: string;
  /** Where the value came from: `AIMASS_GRPC__PORT="abc"`, `config.yaml:4`, … (absent if not set anywhere). */
  source?: string | undefined;
  message: string;
}

/** Invalid configuration; lists every problem found, not just the first. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => {
      const where = p.source ? ` (from ${p.source})` : '';
      return `  - ${p.path || '(config)'}${where}: ${p.message}`;
    });
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`invalid configuration (${count}):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

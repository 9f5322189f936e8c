import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { baseConfigSchema, baseConfigShape, pseudonymConfigSchema } from './base-schema.js';
import { ConfigError } from './config-error.js';
import { envVarName, toEnvSegment } from './env.js';
import { EX_CONFIG, configOrExit, failFast } from './fail-fast.js';
import { loadConfig } from './load-config.js';

const dir = mkdtempSync(join(tmpdir(), 'aimass-config-'));
let n = 0;
function yamlFile(text: string): string {
  const file = join(dir, `c${n++}.yaml`);
  writeFileSync(file, text);
  return file;
}

function problemsOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

const SECRET = 'p'.repeat(40);

describe('env names', () => {
  it('maps key paths to AIMASS_<SECTION>__<KEY> in UPPER_SNAKE_CASE', () => {
    expect(envVarName(['grpc', 'port'])).toBe('AIMASS_GRPC__PORT');
    expect(envVarName(['grpc', 'maxReceiveMessageBytes'])).toBe('AIMASS_GRPC__MAX_RECEIVE_MESSAGE_BYTES');
    expect(envVarName(['serviceName'])).toBe('AIMASS_SERVICE_NAME');
    expect(envVarName(['telemetry', 'otlpEndpoint'], 'X')).toBe('X_TELEMETRY__OTLP_ENDPOINT');
    expect(toEnvSegment('HTTPServerURL')).toBe('HTTP_SERVER_URL');
  });
});

describe('loadConfig', () => {
  it('applies defaults when only the required keys are given', () => {
    const cfg = loadConfig(baseConfigSchema, { env: { AIMASS_SERVICE_NAME: 'fusion' } });
    expect(cfg).toEqual({
      serviceName: 'fusion',
      grpc: {
        host: '0.0.0.0',
        port: 50051,
        maxReceiveMessageBytes: 4 * 1024 * 1024,
        maxSendMessageBytes: 4 * 1024 * 1024,
        flowControlWindowBytes: 1024 * 1024,
        connectionFlowControlWindowBytes: 8 * 1024 * 1024,
        defaultDeadlineMs: 5000,
        requireDeadline: true,
        drainTimeoutMs: 25000,
      },
      log: { level: 'info' },
      telemetry: { enabled: false, exporter: 'otlp' },
    });
  });

  it('reads YAML, lets env override it, and coerces numbers and booleans', () => {
    const file = yamlFile('serviceName: fusion\ngrpc:\n  port: 7000\n  requireDeadline: true\nlog:\n  level: debug\n');
    const cfg = loadConfig(baseConfigSchema, {
      file,
      env: { AIMASS_GRPC__PORT: '7001', AIMASS_GRPC__REQUIRE_DEADLINE: 'false', AIMASS_TELEMETRY__ENABLED: 'yes' },
    });
    expect(cfg.grpc.port).toBe(7001);
    expect(cfg.grpc.requireDeadline).toBe(false);
    expect(cfg.telemetry.enabled).toBe(true);
    expect(cfg.log.level).toBe('debug');
  });

  it('takes the file from AIMASS_CONFIG and treats empty variables as unset', () => {
    const file = yamlFile('serviceName: updater\n');
    const cfg = loadConfig(baseConfigSchema, { env: { AIMASS_CONFIG: file, AIMASS_GRPC__PORT: '' } });
    expect(cfg.serviceName).toBe('updater');
    expect(cfg.grpc.port).toBe(50051);
  });

  it('names the key, the variable and its value, and what was expected', () => {
    const err = problemsOf(() => loadConfig(baseConfigSchema, { env: { AIMASS_SERVICE_NAME: 'fusion', AIMASS_GRPC__PORT: 'abc' } }));
    expect(err.problems).toEqual([
      { path: 'grpc.port', source: 'AIMASS_GRPC__PORT="abc"', message: 'expected a port number between 0 and 65535 (0 lets the OS pick)' },
    ]);
    expect(err.message).toContain('grpc.port (from AIMASS_GRPC__PORT="abc"): expected a port number');
  });

  it('refuses an HTTP/2 window outside what the protocol allows', () => {
    for (const value of ['1024', '2147483648']) {
      const err = problemsOf(() => loadConfig(baseConfigSchema, { env: { AIMASS_SERVICE_NAME: 'fusion', AIMASS_GRPC__FLOW_CONTROL_WINDOW_BYTES: value } }));
      expect(err.problems).toEqual([
        {
          path: 'grpc.flowControlWindowBytes',
          source: `AIMASS_GRPC__FLOW_CONTROL_WINDOW_BYTES="${value}"`,
          message: 'expected an HTTP/2 window in bytes between 65535 (the protocol default) and 2147483647',
        },
      ]);
    }
  });

  it('reports every problem at once, with file lines, unknown keys and suggestions', () => {
    const file = yamlFile(['serviceName: fusion', 'grpc:', '  prot: 7000', '  drainTimeoutMs: -5', 'log:', '  level: loud', 'telemtry: {}', ''].join('\n'));
    const err = problemsOf(() => loadConfig(baseConfigSchema, { file, env: { AIMASS_GRPC__MAX_SEND_MESSAGE_BYTES: '1.5' } }));
    const byPath = Object.fromEntries(err.problems.map((p) => [p.path, p]));
    expect(Object.keys(byPath).sort()).toEqual(['grpc.drainTimeoutMs', 'grpc.maxSendMessageBytes', 'grpc.prot', 'log.level', 'telemtry']);
    expect(byPath['grpc.prot']).toEqual({ path: 'grpc.prot', source: `${file}:3`, message: 'unknown key (did you mean "port"?)' });
    expect(byPath['telemtry']!.message).toBe('unknown key (did you mean "telemetry"?)');
    expect(byPath['grpc.drainTimeoutMs']).toMatchObject({ source: `${file}:4`, message: expect.stringContaining('whole number > 0') });
    expect(byPath['log.level']).toMatchObject({ source: `${file}:6`, message: 'expected one of "trace", "debug", "info", "warn", "error", "fatal", "silent"' });
    expect(byPath['grpc.maxSendMessageBytes']!.source).toBe('AIMASS_GRPC__MAX_SEND_MESSAGE_BYTES="1.5"');
    expect(err.message.split('\n')[0]).toBe('invalid configuration (5 problems):');
  });

  it('says how to set a missing required key', () => {
    const err = problemsOf(() => loadConfig(baseConfigSchema, { env: {} }));
    expect(err.problems).toEqual([
      { path: 'serviceName', source: undefined, message: 'required (set AIMASS_SERVICE_NAME or serviceName in the config file)' },
    ]);
  });

  it('reports YAML syntax errors and a missing file', () => {
    const bad = yamlFile('serviceName: [unclosed\n');
    expect(problemsOf(() => loadConfig(baseConfigSchema, { file: bad, env: {} })).problems[0]!.message).toMatch(/^YAML: /);
    const missing = join(dir, 'nope.yaml');
    expect(problemsOf(() => loadConfig(baseConfigSchema, { file: missing, env: {} })).problems).toEqual([
      { path: '', source: missing, message: 'cannot read config file: file not found' },
    ]);
  });

  it('hides secret values in messages', () => {
    const schema = z.strictObject({ ...baseConfigShape, pseudonym: pseudonymConfigSchema });
    const err = problemsOf(() =>
      loadConfig(schema, { env: { AIMASS_SERVICE_NAME: 'fusion', AIMASS_PSEUDONYM__SECRET: 'tooshort-but-private' } }),
    );
    expect(err.message).not.toContain('tooshort-but-private');
    expect(err.problems[0]).toMatchObject({ path: 'pseudonym.secret', source: 'AIMASS_PSEUDONYM__SECRET=<hidden>' });
  });


  it('composes service sections, lists and mappings from env', () => {
    const schema = z.strictObject({
      ...baseConfigShape,
      pseudonym: pseudonymConfigSchema,
      fusion: z.strictObject({
        strategies: z.array(z.enum(['general', 'personal', 'weighted'])).default(['general']),
        weights: z.array(z.number()).default([]),
        limits: z.record(z.string(), z.number()).default({}),
      }),
    });
    const cfg = loadConfig(schema, {
      env: {
        AIMASS_SERVICE_NAME: 'fusion',
        AIMASS_PSEUDONYM__SECRET: SECRET,
        AIMASS_FUSION__STRATEGIES: 'personal, weighted',
        AIMASS_FUSION__WEIGHTS: '0.25,0.75',
        AIMASS_FUSION__LIMITS: '{"acme": 10}',
      },
    });
    expect(cfg.fusion).toEqual({ strategies: ['personal', 'weighted'], weights: [0.25, 0.75], limits: { acme: 10 } });
    expect(cfg.pseudonym.secret).toBe(SECRET);
  });

  it('requires exactly one pseudonym secret source', () => {
    const schema = z.strictObject({ ...baseConfigShape, pseudonym: pseudonymConfigSchema });
    const err = problemsOf(() =>
      loadConfig(schema, { env: { AIMASS_SERVICE_NAME: 'fusion', AIMASS_PSEUDONYM__SECRET: SECRET, AIMASS_PSEUDONYM__SECRET_FILE: '/run/s' } }),
    );
    expect(err.problems).toEqual([
      { path: 'pseudonym', source: undefined, message: 'set exactly one of secret or secretFile' },
    ]);
  });

  it('rejects unknown AIMASS_ variables only when strictEnv is set', () => {
    const env = { AIMASS_SERVICE_NAME: 'fusion', AIMASS_GRPC__PROT: '1' };
    expect(loadConfig(baseConfigSchema, { env }).serviceName).toBe('fusion');
    const err = problemsOf(() => loadConfig(baseConfigSchema, { env, strictEnv: true }));
    expect(err.problems[0]).toMatchObject({ source: 'AIMASS_GRPC__PROT', message: 'unknown variable (did you mean "AIMASS_GRPC__PORT"?)' });
  });
});

describe('failFast / configOrExit', () => {
  it('prints the message and exits with 78 on a ConfigError', () => {
    let written = '';
    let code: number | undefined;
    const io = {
      stderr: { write: (t: string) => (written += t) },
      exit: ((c: number) => {
        code = c;
        throw new Error('exited');
      }) as (code: number) => never,
    };
    expect(() => configOrExit(baseConfigSchema, { env: { AIMASS_GRPC__PORT: '99999' } }, io)).toThrow('exited');
    expect(code).toBe(EX_CONFIG);
    expect(written).toContain('grpc.port (from AIMASS_GRPC__PORT="99999")');
    expect(written).toContain('serviceName: required');
    expect(written).not.toContain('    at ');
    expect(() => failFast(new Error('boom'), io)).toThrow('exited');
    expect(code).toBe(1);
  });
});

import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** What onnxruntime-node reports about one execution provider. */
export interface BackendInfo {
  name: string;
  /** False when the provider's shared libraries ship separately (CUDA, TensorRT) and may be absent. */
  bundled: boolean;
}

export interface ProviderChoice {
  /** Providers to hand to `InferenceSession.create`, in order of preference; always ends with 'cpu'. */
  providers: string[];
  /** Preferred providers left out, each with the reason, for the service's startup log and ModelMetadata. */
  skipped: { name: string; reason: string }[];
}

/**
 * Chooses execution providers from configuration. A GPU is configured, never assumed: a provider
 * the runtime does not know, or whose libraries were not installed (the CUDA download is skipped
 * by the project's .npmrc unless an image opts in), is skipped with a reason, and 'cpu' is always
 * the last resort so a node without a GPU still serves.
 */
export function chooseExecutionProviders(
  preferred: readonly string[],
  available: readonly BackendInfo[],
  installed: (name: string) => boolean,
): ProviderChoice {
  const providers: string[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const raw of preferred) {
    const name = raw.trim().toLowerCase();
    if (providers.includes(name)) continue;
    const info = available.find((b) => b.name === name);
    if (!info) {
      skipped.push({ name, reason: `not supported by this onnxruntime build (known: ${available.map((b) => b.name).join(', ')})` });
    } else if (!info.bundled && !installed(name)) {
      skipped.push({ name, reason: 'its libraries are not installed (set ONNXRUNTIME_NODE_INSTALL=cuda12 at npm install time)' });
    } else {
      providers.push(name);
    }
  }
  if (!providers.includes('cpu')) providers.push('cpu');
  return { providers, skipped };
}

const require = createRequire(import.meta.url);

/** The same choice against the onnxruntime-node installed here. */
export function resolveExecutionProviders(preferred: readonly string[]): ProviderChoice {
  const ort = require('onnxruntime-node') as { listSupportedBackends(): BackendInfo[] };
  return chooseExecutionProviders(preferred, ort.listSupportedBackends(), providerLibraryInstalled);
}

/** onnxruntime-node keeps optional provider libraries beside its binding once its installer fetched them. */
function providerLibraryInstalled(name: string): boolean {
  const dir = join(dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
  if (!existsSync(dir)) return false;
  return readdirSync(dir).some((file) => file.startsWith(`libonnxruntime_providers_${name}`));
}

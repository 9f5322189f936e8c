/** `/aimass.fusion.v1.Fusion/Predict` → `{ service: 'aimass.fusion.v1.Fusion', method: 'Predict' }`. */
export function splitPath(path: string): { service: string; method: string } {
  const trimmed = path.startsWith('/') ? path.slice(1) : path;
  const slash = trimmed.lastIndexOf('/');
  if (slash < 0) return { service: '', method: trimmed };
  return { service: trimmed.slice(0, slash), method: trimmed.slice(slash + 1) };
}

/** Span name per the OpenTelemetry RPC conventions: `package.Service/Method`. */
export function rpcSpanName(path: string): string {
  return path.startsWith('/') ? path.slice(1) : path;
}

/**
 * Services that answer without a deadline and while draining: probes (health) and tools
 * (reflection, e.g. grpcurl) do not set deadlines, and health must keep answering NOT_SERVING
 * during a drain for load balancers to notice it.
 */
export const EXEMPT_SERVICE_PREFIXES: readonly string[] = [
  '/grpc.health.v1.Health/',
  '/grpc.reflection.v1.ServerReflection/',
  '/grpc.reflection.v1alpha.ServerReflection/',
];

export function isExemptPath(path: string): boolean {
  return EXEMPT_SERVICE_PREFIXES.some((p) => path.startsWith(p));
}

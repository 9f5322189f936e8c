// Test helpers that register vitest tests: a separate entry (`@aimass/testing/vitest`), because
// the main one is also loaded outside vitest (the benchmarks), where importing vitest fails.
export { hostileRpcSuite, type HostileRpc, type HostileSuiteOptions } from './hostile-suite.js';

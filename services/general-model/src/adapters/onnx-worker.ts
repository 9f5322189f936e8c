// An inference worker thread: one onnxruntime session per loaded model version. It must not import
// anything but Node built-ins at run time (type imports are erased), because under the TypeScript
// test runner it is transpiled on its own into a temporary directory (see worker-script.ts).
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import type * as Ort from 'onnxruntime-node';
import type { FromWorker, ToWorker, WireTensor, WireValueMeta, WorkerData, WorkerFault } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('onnx-worker must run in a worker thread');
const { ortPath } = workerData as WorkerData;
const ort = createRequire(import.meta.url)(ortPath) as typeof Ort;

const sessions = new Map<string, Ort.InferenceSession>();
let pendingFault: WorkerFault | undefined;

function post(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

/** Applies a test fault; returns true when the thread goes on. */
function applyFault(fault: WorkerFault): boolean {
  if (fault.kind === 'stall') {
    const until = performance.now() + (fault.ms ?? 100);
    while (performance.now() < until) {
      // Busy on purpose: a synchronous run holds the thread just like this.
    }
    return true;
  }
  if (fault.kind === 'exit') process.exit(70);
  setImmediate(() => {
    throw new Error('injected worker fault');
  });
  return false;
}

type Data = Ort.Tensor['data'];

function typedArray(type: string, buffer: ArrayBuffer, byteOffset: number, byteLength: number): Data {
  switch (type) {
    case 'float32':
      return new Float32Array(buffer, byteOffset, byteLength / 4);
    case 'float64':
      return new Float64Array(buffer, byteOffset, byteLength / 8);
    case 'float16':
    case 'uint16':
      return new Uint16Array(buffer, byteOffset, byteLength / 2);
    case 'int16':
      return new Int16Array(buffer, byteOffset, byteLength / 2);
    case 'int32':
      return new Int32Array(buffer, byteOffset, byteLength / 4);
    case 'uint32':
      return new Uint32Array(buffer, byteOffset, byteLength / 4);
    case 'int64':
      return new BigInt64Array(buffer, byteOffset, byteLength / 8);
    case 'uint64':
      return new BigUint64Array(buffer, byteOffset, byteLength / 8);
    case 'int8':
      return new Int8Array(buffer, byteOffset, byteLength);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buffer, byteOffset, byteLength);
    default:
      throw new Error(`tensor type ${type} is not supported`);
  }
}

const BYTES: Record<string, number> = { float64: 8, int64: 8, uint64: 8, float32: 4, int32: 4, uint32: 4, float16: 2, int16: 2, uint16: 2 };

function toMeta(m: Ort.InferenceSession.ValueMetadata): WireValueMeta {
  return m.isTensor ? { name: m.name, isTensor: true, type: m.type, dims: [...m.shape] } : { name: m.name, isTensor: false, type: '', dims: [] };
}

function toWire(name: string, tensor: Ort.Tensor, transfer: ArrayBuffer[]): WireTensor {
  const data = tensor.data as Exclude<Data, string[]>;
  if (!ArrayBuffer.isView(data)) throw new Error(`output '${name}' is not a numeric tensor`);
  let buffer = data.buffer as ArrayBuffer;
  let byteOffset = data.byteOffset;
  // Transfer the output's own buffer when it holds nothing else; otherwise copy the bytes out.
  if (byteOffset !== 0 || data.byteLength !== buffer.byteLength || transfer.includes(buffer)) {
    buffer = buffer.slice(byteOffset, byteOffset + data.byteLength);
    byteOffset = 0;
  }
  transfer.push(buffer);
  return { name, type: tensor.type, dims: [...tensor.dims], buffer, byteOffset, byteLength: data.byteLength };
}

async function warmUp(session: Ort.InferenceSession): Promise<number> {
  const start = performance.now();
  const feeds: Record<string, Ort.Tensor> = {};
  for (const meta of session.inputMetadata) {
    if (!meta.isTensor) throw new Error(`input '${meta.name}' is not a tensor`);
    const dims = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : 1));
    const count = dims.reduce((a, b) => a * b, 1);
    const bytes = count * (BYTES[meta.type] ?? 1);
    feeds[meta.name] = new ort.Tensor(meta.type as 'float32', typedArray(meta.type, new ArrayBuffer(bytes), 0, bytes) as Float32Array, dims);
  }
  await session.run(feeds);
  return performance.now() - start;
}

async function handle(msg: ToWorker): Promise<void> {
  switch (msg.op) {
    case 'load': {
      const start = performance.now();
      const session = await ort.InferenceSession.create(msg.path, {
        intraOpNumThreads: msg.options.intraOpNumThreads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        executionProviders: msg.options.executionProviders,
        graphOptimizationLevel: msg.options.graphOptimizationLevel,
      });
      const loadMs = performance.now() - start;
      let warmupMs = 0;
      try {
        if (msg.warmup) warmupMs = await warmUp(session);
      } catch (err) {
        await session.release();
        throw new Error(`warm-up failed: ${(err as Error).message}`, { cause: err });
      }
      const old = sessions.get(msg.key);
      sessions.set(msg.key, session);
      if (old) await old.release();
      post({
        op: 'loaded',
        id: msg.id,
        inputs: session.inputMetadata.map(toMeta),
        outputs: session.outputMetadata.map(toMeta),
        loadMs,
        warmupMs,
      });
      return;
    }
    case 'run': {
      if (pendingFault) {
        const fault = pendingFault;
        pendingFault = undefined;
        if (!applyFault(fault)) return;
      }
      const session = sessions.get(msg.key);
      if (!session) throw new Error(`model ${msg.key} is not loaded in this worker`);
      const feeds: Record<string, Ort.Tensor> = {};
      for (const f of msg.feeds) {
        feeds[f.name] = new ort.Tensor(f.type as 'float32', typedArray(f.type, f.buffer, f.byteOffset, f.byteLength) as Float32Array, f.dims);
      }
      const start = performance.now();
      const results = await session.run(feeds);
      const runMs = performance.now() - start;
      const transfer: ArrayBuffer[] = [];
      const outputs = session.outputNames.map((name) => toWire(name, results[name] as Ort.Tensor, transfer));
      post({ op: 'result', id: msg.id, outputs, runMs }, transfer);
      return;
    }
    case 'unload': {
      const session = sessions.get(msg.key);
      sessions.delete(msg.key);
      if (session) await session.release();
      post({ op: 'unloaded', id: msg.id });
      return;
    }
    case 'fault':
      if (msg.fault.when === 'now') applyFault(msg.fault);
      else pendingFault = msg.fault;
      return;
  }
}

port.on('message', (msg: ToWorker) => {
  handle(msg).catch((err: unknown) => {
    if ('id' in msg) post({ op: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) });
  });
});
post({ op: 'ready' });

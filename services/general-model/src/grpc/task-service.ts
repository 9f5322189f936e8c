import { BODY_ENCODING_HEADERS } from '@aimass/ml';
import { InvalidArgumentError, unary, type CallContext } from '@aimass/platform';
import { v1 } from '@aimass/proto';
import { alignedView, type HostTensor } from '../domain/tensor.js';
import type { LoadedVersion, ModelManager } from '../runtime/model-manager.js';
import { labelsOf, taskModelOf, type TaskModel } from '../runtime/task-model.js';
import { batchTenantOf } from './tenant.js';

export interface TaskServiceOptions {
  manager: ModelManager;
  /** Model served when a request names none. */
  defaultModel: string;
  /** Inputs one request may carry. */
  maxInputs?: number | undefined;
}

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

const { ModelState } = v1;

/** One-line header values only: a header injected through a value would change the mail. */
function headerLine(name: string, value: string): string {
  return `${name.replace(/[^\x21-\x39\x3b-\x7e]/g, '')}: ${value.replace(/[\r\n]+/g, ' ')}`;
}

/**
 * The text the featurizer reads for one input. Plain text gets an empty header block so a first line
 * such as "Note: ..." is body, not a header; a mail becomes RFC 822 text with its headers.
 */
export function inputText(input: v1.InputPayload, index: number): string {
  const field = `inputs[${index}]`;
  const kind = input.kind;
  switch (kind?.$case) {
    case 'text':
      return `\n${kind.value}`;
    case 'mail': {
      const { subject, body, headers } = kind.value;
      // The body is decoded plain text: a Content-Transfer-Encoding (or a multipart boundary) sent
      // along with the headers as received would make the reader decode it a second time.
      const lines = Object.entries(headers)
        .filter(([name]) => {
          const lower = name.toLowerCase();
          return lower !== 'subject' && !BODY_ENCODING_HEADERS.has(lower);
        })
        .map(([name, value]) => headerLine(name, value));
      lines.push(headerLine('Subject', subject));
      return `${lines.join('\n')}\n\n${body}`;
    }
    case 'raw': {
      const type = kind.value.contentType.split(';')[0]!.trim().toLowerCase();
      if (type !== '' && type !== 'message/rfc822' && !type.startsWith('text/')) {
        throw new InvalidArgumentError(`${field}: raw content type '${type}' is not supported (message/rfc822 or text/*)`, { field: `${field}.raw.content_type` });
      }
      const text = new TextDecoder('utf-8').decode(kind.value.data);
      return type === 'message/rfc822' ? text : `\n${text}`;
    }
    case 'features':
      throw new InvalidArgumentError(`${field}: typed features are not supported by the general model (send text or mail)`, { field: `${field}.features` });
    default:
      throw new InvalidArgumentError(`${field}: empty input (set text, mail or raw)`, { field });
  }
}

interface Scored {
  probs: Float32Array;
  embedding: Float32Array;
}

/** 0 for a model that is not a text model (it is still listed). */
function embeddingDimOf(version: LoadedVersion): number {
  try {
    return taskModelOf(version).embeddingDim;
  } catch {
    return 0;
  }
}

export function createTaskService(options: TaskServiceOptions): v1.GeneralModelServiceServer {
  const { manager } = options;
  const maxInputs = options.maxInputs ?? 1024;

  const resolveModel = (ref: v1.ModelRef | undefined): LoadedVersion => manager.resolve(ref?.name || options.defaultModel, ref?.version ?? '');

  /** Featurizes, splits into batches no larger than the model's max, and runs them through its batcher. */
  const score = async (version: LoadedVersion, task: TaskModel, inputs: v1.InputPayload[], ctx: CallContext): Promise<Scored[]> => {
    if (inputs.length === 0) throw new InvalidArgumentError('inputs must not be empty', { field: 'inputs' });
    if (inputs.length > maxInputs) throw new InvalidArgumentError(`${inputs.length} inputs exceed the limit of ${maxInputs} per request`, { field: 'inputs' });
    const rows = inputs.map((input, i) => task.featurizer.encodePadded(inputText(input, i)));
    const chunk = Math.max(1, version.limits.maxBatchSize);
    const tenant = batchTenantOf(ctx);
    const pending: Promise<HostTensor[]>[] = [];
    for (let start = 0; start < rows.length; start += chunk) {
      const part = rows.slice(start, start + chunk);
      const ids = new BigInt64Array(part.length * task.width);
      part.forEach((row, r) => ids.set(row.subarray(0, task.width), r * task.width));
      const tensor: HostTensor = { name: task.inputName, datatype: 'INT64', dims: [part.length, task.width], bytes: new Uint8Array(ids.buffer) };
      pending.push(
        manager.infer(
          version,
          { inputs: [tensor], rows: part.length, shapeKey: String(task.width), outputs: [task.probsName, task.embeddingName], raw: true },
          { deadline: ctx.deadline, signal: ctx.signal, tenant },
        ),
      );
    }
    const results: Scored[] = [];
    for (const outputs of await Promise.all(pending)) {
      const probs = outputs.find((o) => o.name === task.probsName)!;
      const embedding = outputs.find((o) => o.name === task.embeddingName)!;
      const n = probs.dims[0] ?? 0;
      const p = alignedView(probs) as Float32Array;
      const e = alignedView(embedding) as Float32Array;
      const pw = p.length / n;
      const ew = e.length / n;
      for (let r = 0; r < n; r++) results.push({ probs: p.subarray(r * pw, (r + 1) * pw), embedding: e.subarray(r * ew, (r + 1) * ew) });
    }
    return results;
  };

  return {
    classify: unary<v1.ClassifyRequest, v1.ClassifyResponse>(async (req, ctx) => {
      const version = resolveModel(req.model);
      const task = taskModelOf(version);
      const scored = await score(version, task, req.inputs, ctx);
      return {
        model: { name: version.model, version: String(version.version) },
        labels: task.labels,
        results: scored.map(({ probs, embedding }) => {
          let best = 0;
          for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
          return {
            label: task.labels[best] ?? String(best),
            probabilities: Array.from(probs),
            // The model outputs probabilities; their logarithms are logits up to a constant per row.
            logits: req.includeLogits ? Array.from(probs, (p) => Math.log(p)) : [],
            embedding: req.includeEmbedding ? Array.from(embedding) : [],
          };
        }),
      };
    }),

    embed: unary<v1.EmbedRequest, v1.EmbedResponse>(async (req, ctx) => {
      const version = resolveModel(req.model);
      const task = taskModelOf(version);
      const scored = await score(version, task, req.inputs, ctx);
      return {
        model: { name: version.model, version: String(version.version) },
        dimension: task.embeddingDim,
        embeddings: scored.map((s) => ({ values: Array.from(s.embedding) })),
      };
    }),

    listModels: unary<v1.ListModelsRequest, v1.ListModelsResponse>(async (req) => {
      const size = Math.min(req.page?.pageSize || DEFAULT_PAGE, MAX_PAGE);
      const token = req.page?.pageToken ?? '';
      if (token !== '' && !/^\d+$/.test(token)) throw new InvalidArgumentError('invalid page_token', { field: 'page.page_token' });
      const offset = token === '' ? 0 : Number(token);
      const infos: v1.GeneralModelInfo[] = [];
      for (const name of await manager.repository.list()) {
        const loaded = manager.loadedVersions(name);
        // A model whose config cannot be read still lists its loaded versions.
        const onDisk = await manager.repository.read(name).then((m) => m.versions, () => [] as number[]);
        const state = manager.modelState(name);
        const latest = loaded[loaded.length - 1];
        for (const version of [...new Set([...onDisk, ...loaded.map((v) => v.version)])].sort((a, b) => a - b)) {
          const v = loaded.find((l) => l.version === version);
          if (v) {
            const dim = embeddingDimOf(v);
            infos.push({
              model: { name, version: String(version) },
              state: ModelState.MODEL_STATE_READY,
              isDefault: name === options.defaultModel && v === latest,
              labels: labelsOf(v) ?? [],
              embeddingDimension: dim,
              sha256: v.sha256,
              loadedAt: v.loadedAt,
            });
          } else {
            const failed = state?.state === 'UNAVAILABLE' && state.reason.startsWith('load failed');
            infos.push({
              model: { name, version: String(version) },
              state: state?.state === 'LOADING' ? ModelState.MODEL_STATE_LOADING : failed ? ModelState.MODEL_STATE_FAILED : ModelState.MODEL_STATE_AVAILABLE,
              isDefault: false,
              labels: [],
              embeddingDimension: 0,
              sha256: '',
              loadedAt: undefined,
            });
          }
        }
      }
      const page = infos.slice(offset, offset + size);
      return { models: page, nextPageToken: offset + size < infos.length ? String(offset + size) : '' };
    }),
  };
}

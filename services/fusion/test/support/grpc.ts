import { Metadata, credentials, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { TENANT_METADATA_KEY } from '@aimass/platform';
import { v1 } from '@aimass/proto';

export type InferenceClient = v1.InferenceServiceClient;

export function inferenceClient(address: string): InferenceClient {
  return new v1.InferenceServiceClient(address, credentials.createInsecure());
}

export interface CallOpts {
  /** Tenant header; `null` sends none. Default `acme`. */
  tenant?: string | null;
  deadlineMs?: number;
}

function metadataFor(tenant: string | null | undefined): Metadata {
  const md = new Metadata();
  if (tenant !== null) md.set(TENANT_METADATA_KEY, tenant ?? 'acme');
  return md;
}

type Unary<Req, Res> = (request: Req, metadata: Metadata, options: { deadline: Date }, callback: (err: ServiceError | null, res: Res) => void) => unknown;

/** A unary call with tenant metadata and a deadline; rejects with the grpc-js ServiceError. */
export function call<Req, Res>(client: InferenceClient, method: Unary<Req, Res>, request: Req, opts: CallOpts = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, request, metadataFor(opts.tenant), { deadline: new Date(Date.now() + (opts.deadlineMs ?? 10_000)) }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

export async function callError(promise: Promise<unknown>): Promise<ServiceError> {
  try {
    await promise;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the call to fail');
}

export const text = (value: string): v1.InputPayload => ({ kind: { $case: 'text', value } });

export const mail = (from: string, subject: string, body: string, headers: Record<string, string> = {}): v1.InputPayload => ({
  kind: { $case: 'mail', value: { subject, body, headers: { from, ...headers } } },
});

export function options(partial: Partial<v1.PredictOptions> = {}): v1.PredictOptions {
  return { strategy: 0, topK: 0, includeEmbedding: false, includeComponents: false, generalModel: undefined, ...partial };
}

export function predict(client: InferenceClient, userId: string, input: v1.InputPayload, opts: Partial<v1.PredictOptions> = {}, callOpts: CallOpts = {}): Promise<v1.Prediction> {
  return call(client, client.predict, { userId, input, options: options(opts) }, callOpts).then((r) => r.prediction!);
}

export function feedback(
  client: InferenceClient,
  req: { userId: string; predictionId?: string; input?: v1.InputPayload; label: string; idempotencyKey?: string },
  callOpts: CallOpts = {},
): Promise<v1.FeedbackResponse> {
  return call(
    client,
    client.feedback,
    {
      userId: req.userId,
      target: req.predictionId !== undefined ? { $case: 'predictionId', value: req.predictionId } : req.input ? { $case: 'input', value: req.input } : undefined,
      label: req.label,
      idempotencyKey: req.idempotencyKey ?? '',
      occurredAt: undefined,
    },
    callOpts,
  );
}

/** Runs a PredictStream: writes the requests (optionally spaced out) and collects every response until the server ends the stream. */
export function predictStream(
  client: InferenceClient,
  requests: v1.PredictStreamRequest[],
  opts: CallOpts & { gapMs?: number } = {},
): Promise<{ responses: v1.PredictStreamResponse[]; error?: ServiceError }> {
  return new Promise((resolve) => {
    const responses: v1.PredictStreamResponse[] = [];
    const stream: ClientDuplexStream<v1.PredictStreamRequest, v1.PredictStreamResponse> = client.predictStream(metadataFor(opts.tenant), {
      deadline: new Date(Date.now() + (opts.deadlineMs ?? 20_000)),
    });
    let error: ServiceError | undefined;
    stream.on('data', (r: v1.PredictStreamResponse) => responses.push(r));
    stream.on('error', (err: ServiceError) => {
      error = err;
    });
    stream.on('close', () => resolve(error ? { responses, error } : { responses }));
    void (async () => {
      for (const r of requests) {
        stream.write(r);
        if (opts.gapMs) await new Promise((res) => setTimeout(res, opts.gapMs));
      }
      stream.end();
    })();
  });
}

import {
  Metadata,
  ServerInterceptingCall,
  status as Status,
  type ServerInterceptor,
  type ServiceDefinition,
} from '@grpc/grpc-js';

/**
 * What a method's request deserializer yields for bytes that are not a valid message (cut short,
 * a wrong wire type, a 64-bit number beyond 2^53). grpc-js answers a throwing deserializer with
 * INTERNAL, which blames the server for the caller's bytes; this stands in for the message until
 * `rejectMalformedRequests` answers it.
 */
export class MalformedRequest {
  constructor(readonly reason: string) {}
}

/** The definition with deserializers that return a MalformedRequest instead of throwing. */
export function tolerantDefinition(definition: ServiceDefinition): ServiceDefinition {
  const out: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(definition)) {
    const deserialize = method.requestDeserialize;
    out[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return deserialize(bytes);
        } catch (err) {
          return new MalformedRequest(err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return out as ServiceDefinition;
}

/**
 * Ends a call whose request could not be decoded with INVALID_ARGUMENT, naming the method, before
 * its handler sees it. Installed outermost, so the status it sends passes every other interceptor
 * (authentication, quotas, the call policy) as a handler's would.
 */
export const rejectMalformedRequests: ServerInterceptor = (methodDescriptor, next) => {
  const call: ServerInterceptingCall = new ServerInterceptingCall(next, {
    start: (startNext) => {
      startNext({
        onReceiveMessage: (message, messageNext) => {
          if (message instanceof MalformedRequest) {
            call.sendStatus({
              code: Status.INVALID_ARGUMENT,
              details: `malformed request: the bytes sent to ${methodDescriptor.path} are not a valid protobuf message of its request type (${message.reason.slice(0, 200)}); regenerate the client from the service's .proto files`,
              metadata: new Metadata(),
            });
            return;
          }
          messageNext(message);
        },
      });
    },
  });
  return call;
};

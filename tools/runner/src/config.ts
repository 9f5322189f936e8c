import { baseConfigShape, grpcConfigSchema } from '@aimass/platform';
import { z } from 'zod';

export const runnerConfigSchema = z.strictObject({
  ...baseConfigShape,
  serviceName: baseConfigShape.serviceName.default('aimass'),
  // One process on a developer's machine: loopback unless told otherwise.
  grpc: grpcConfigSchema.extend({ host: z.string().min(1).default('127.0.0.1'), port: grpcConfigSchema.shape.port.default(50050) }).prefault({}),
  runner: z
    .strictObject({
      /** Where SQLite files and the event journal live. */
      dataDir: z.string().min(1).default('.data'),
      /** Embedded services listen on consecutive ports after this one; 0 lets the OS pick each. */
      servicePortBase: z
        .number({ error: 'expected a port number between 0 and 65535' })
        .int()
        .min(0)
        .max(65535)
        .default(50051),
      /** Train the default general model on first start when the repository has none. */
      trainDefaultModel: z.boolean().default(true),
    })
    .prefault({}),
});

export type RunnerConfig = z.output<typeof runnerConfigSchema>;

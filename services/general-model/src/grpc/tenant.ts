import { tenantIfValid, type CallContext } from '@aimass/platform';

/**
 * The tenant a call is made for, for sharing the batch queue fairly; '' when the call carries
 * none (the Open Inference Protocol does not require one), so such calls share one slot.
 */
export function batchTenantOf(ctx: CallContext): string {
  return tenantIfValid(ctx.metadata) ?? '';
}

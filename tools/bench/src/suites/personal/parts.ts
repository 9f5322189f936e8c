/** The personal suite's parts: fused vs general-only throughput, and the million-user store. */
export const PERSONAL_PARTS = ['fusion', 'store'] as const;
export type PersonalPart = (typeof PERSONAL_PARTS)[number];

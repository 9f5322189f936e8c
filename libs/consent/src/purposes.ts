import { v1 } from '@aimass/proto';

/** What a consent covers (aimass.v1.Purpose without its zero value). */
export type ConsentPurpose = 'personalization' | 'training';

/** Every purpose, in the order GetConsent lists them. */
export const CONSENT_PURPOSES: readonly ConsentPurpose[] = ['personalization', 'training'];

/** A recorded decision (aimass.v1.ConsentState without its zero value). */
export type ConsentStateName = 'granted' | 'denied' | 'withdrawn';

export const CONSENT_STATES: readonly ConsentStateName[] = ['granted', 'denied', 'withdrawn'];

const PURPOSE_TO_PROTO: Readonly<Record<ConsentPurpose, v1.Purpose>> = {
  personalization: v1.Purpose.PURPOSE_PERSONALIZATION,
  training: v1.Purpose.PURPOSE_TRAINING,
};

const STATE_TO_PROTO: Readonly<Record<ConsentStateName, v1.ConsentState>> = {
  granted: v1.ConsentState.CONSENT_STATE_GRANTED,
  denied: v1.ConsentState.CONSENT_STATE_DENIED,
  withdrawn: v1.ConsentState.CONSENT_STATE_WITHDRAWN,
};

export function purposeToProto(purpose: ConsentPurpose): v1.Purpose {
  return PURPOSE_TO_PROTO[purpose];
}

/** Undefined for UNSPECIFIED and for values this build does not know. */
export function purposeFromProto(value: v1.Purpose): ConsentPurpose | undefined {
  return CONSENT_PURPOSES.find((p) => PURPOSE_TO_PROTO[p] === value);
}

export function consentStateToProto(state: ConsentStateName): v1.ConsentState {
  return STATE_TO_PROTO[state];
}

/** Undefined for UNSPECIFIED and for values this build does not know. */
export function consentStateFromProto(value: v1.ConsentState): ConsentStateName | undefined {
  return CONSENT_STATES.find((s) => STATE_TO_PROTO[s] === value);
}

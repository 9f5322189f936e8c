import { Prng, murmur3 } from '@aimass/ml';
import type { EvalMail, Label } from './corpus.js';

export type ProfileKind = 'divergent' | 'neutral';

/**
 * A kind of user. A divergent profile disagrees with the corpus on one coherent slice of mail
 * (and gives that slice the other label); everywhere else every profile agrees with the corpus.
 */
export interface Profile {
  readonly name: string;
  readonly kind: ProfileKind;
  /** Who this user is, in a sentence. */
  readonly description: string;
  /** Which mails the slice holds and how they are recognised. */
  readonly slice: string;
  readonly inSlice: (mail: EvalMail) => boolean;
}

const INSURANCE_SENDERS = new Set(['insurancemail.net', 'insiq.us']);
const MUTED_LIST = 'rpm-zzzlist.freshrpms.net';

export const PROFILES: readonly Profile[] = [
  {
    name: 'newsletter-averse',
    kind: 'divergent',
    description: 'subscribed to commercial newsletters long ago and now treats them as unwanted',
    slice: 'the hard-ham group (CNET, ZDNet, Lockergnome, Motley Fool, … newsletters and promotions the corpus calls ham): spam for this user',
    inSlice: (m) => m.group.startsWith('hard-ham'),
  },
  {
    name: 'insurance-agent',
    kind: 'divergent',
    description: 'an insurance agent who wants the carrier and marketing-organisation offers sent to agents',
    slice: 'spam from insurancemail.net and insiq.us (the "IQ" insurance-marketing mailings: annuity rates, commissions, agent leads): ham for this user',
    inSlice: (m) => m.corpusLabel === 'spam' && m.fromDomain !== undefined && INSURANCE_SENDERS.has(m.fromDomain),
  },
  {
    name: 'list-muter',
    kind: 'divergent',
    description: 'muted a busy mailing list they no longer follow',
    slice: `ham of the mailing list with List-Id <${MUTED_LIST}> (the freshrpms.net RPM list, the largest list with no spam in the corpus): spam for this user`,
    inSlice: (m) => m.corpusLabel === 'ham' && m.listId === MUTED_LIST,
  },
  {
    name: 'neutral',
    kind: 'neutral',
    description: 'agrees with the corpus: wants its ham, not its spam',
    slice: 'none',
    inSlice: () => false,
  },
];

/** The label a user of `profile` gives `mail`. */
export function userLabel(profile: Profile, mail: EvalMail): Label {
  if (!profile.inSlice(mail)) return mail.corpusLabel;
  return mail.corpusLabel === 'spam' ? 'ham' : 'spam';
}

/** One simulated user: their id, their mail in arrival order, and held-out mail of their own. */
export interface SimulatedUser {
  /** The user_id sent to the platform: stable for the run (`<run id>-<profile>-<n>`). */
  readonly id: string;
  readonly profile: Profile;
  /** 1-based within the profile. */
  readonly index: number;
  /** Arrival order. Only mails the general model trained on (see buildUsers). */
  readonly stream: readonly EvalMail[];
  /** Never streamed, never fed back; only mails the general model did not train on. */
  readonly heldOut: readonly EvalMail[];
  readonly sliceInStream: number;
  readonly sliceInHeldOut: number;
  label(mail: EvalMail): Label;
}

export interface BuildUsersOptions {
  /** Users per profile; neutral gets at least 2. */
  usersPerProfile: number;
  seed: number;
  /** Mails in each stream at most. */
  streamLength: number;
  /** Held-out mails per user at most. */
  heldOut: number;
  /** Prefix of the user ids. */
  runId: string;
  profiles?: readonly Profile[] | undefined;
}

/** A seed per (run seed, profile, user): each user samples differently, every run the same. */
function userSeed(seed: number, profile: string, index: number): number {
  return murmur3(`${profile}/${index}`, seed >>> 0);
}

function sample<T>(items: readonly T[], n: number, rng: Prng): T[] {
  const copy = [...items];
  rng.shuffle(copy);
  return copy.slice(0, Math.max(0, Math.min(n, copy.length)));
}

/**
 * The simulated users. For each user:
 * - the stream holds the slice's mails the general model trained on (at most half the stream)
 *   plus other mails it trained on, up to `streamLength`, shuffled;
 * - the held-out set holds only mails the general model never saw (its hash hold-out split), so
 *   the general model's error there is honest; the slice's share in it matches the stream's, as a
 *   user's later mail resembles their earlier mail. When the slice has too few held-out mails
 *   for that share at `heldOut` mails, the other mails shrink with it rather than the share.
 * Users of one profile share the slice and differ in the other mails and the order.
 */
export function buildUsers(mails: readonly EvalMail[], options: BuildUsersOptions): SimulatedUser[] {
  const users: SimulatedUser[] = [];
  for (const profile of options.profiles ?? PROFILES) {
    const count = profile.kind === 'neutral' ? Math.max(2, options.usersPerProfile) : options.usersPerProfile;
    const slice = mails.filter(profile.inSlice);
    const sliceTrain = slice.filter((m) => !m.generalHeldOut);
    const sliceHeld = slice.filter((m) => m.generalHeldOut);
    const othersTrain = mails.filter((m) => !m.generalHeldOut && !profile.inSlice(m));
    const othersHeld = mails.filter((m) => m.generalHeldOut && !profile.inSlice(m));
    for (let index = 1; index <= count; index++) {
      const rng = new Prng(userSeed(options.seed, profile.name, index));
      const sliceStream = sample(sliceTrain, Math.floor(options.streamLength / 2), rng);
      const stream = [...sliceStream, ...sample(othersTrain, options.streamLength - sliceStream.length, rng)];
      rng.shuffle(stream);
      const share = stream.length === 0 ? 0 : sliceStream.length / stream.length;
      const sliceHeldCount = Math.min(sliceHeld.length, Math.round(options.heldOut * share));
      const othersHeldCount =
        sliceHeldCount === 0 ? options.heldOut : Math.min(options.heldOut - sliceHeldCount, Math.round((sliceHeldCount * (1 - share)) / share));
      const heldOut = [...sample(sliceHeld, sliceHeldCount, rng), ...sample(othersHeld, othersHeldCount, rng)];
      heldOut.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      users.push({
        id: `${options.runId}-${profile.name}-${index}`,
        profile,
        index,
        stream,
        heldOut,
        sliceInStream: sliceStream.length,
        sliceInHeldOut: sliceHeldCount,
        label: (mail) => userLabel(profile, mail),
      });
    }
  }
  return users;
}

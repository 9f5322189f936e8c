import { mailFromRfc822 as fromRfc822 } from '@aimass/ml';
import type { MailInput } from '@aimass/sdk';

/**
 * A mail file (RFC 822 / MIME, as saved by mail clients) in the form the public API takes: the
 * conversion libs/ml defines for everyone (fusion applies the same one to raw input), so a mail
 * sent from a file gives the same answer as the same mail sent raw.
 */
export function mailFromRfc822(raw: string): MailInput {
  return fromRfc822(raw);
}

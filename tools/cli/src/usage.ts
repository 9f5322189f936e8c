/**
 * Where `aimass dev` serves the public API: the runner gives embedded services consecutive ports
 * from `runner.servicePortBase` (50051) in registry order, and fusion is third (general-model,
 * personal-model, fusion).
 */
export const DEFAULT_ADDRESS = '127.0.0.1:50053';
export const DEFAULT_TENANT = 'default';
/**
 * Where `aimass dev` serves the updater's admin API (aimass.v1.UpdaterAdminService): the
 * updater is the runner's fourth service, after general-model, personal-model and fusion.
 */
export const DEFAULT_UPDATER_ADDRESS = '127.0.0.1:50054';
/**
 * Where `aimass dev` serves the privacy API (aimass.v1.PrivacyService): the runner gives privacy
 * the fixed offset +4 from `runner.servicePortBase`.
 */
export const DEFAULT_PRIVACY_ADDRESS = '127.0.0.1:50055';
/** How long `erase --wait` waits for every service to confirm. */
export const ERASE_TIMEOUT_S = 60;
/** How long `eval` waits for the updater to apply a user's feedback before a checkpoint. */
export const SETTLE_TIMEOUT_S = 30;

const CONNECTION = `Connection (every command that talks to the platform):
  --address HOST:PORT  the public API (fusion) (default: $AIMASS_ADDRESS or ${DEFAULT_ADDRESS},
                       where \`aimass dev\` serves it)
  --tenant T           tenant the calls are made for (default: $AIMASS_TENANT or ${DEFAULT_TENANT})
  --api-key KEY        sent as "authorization: Bearer KEY" (default: $AIMASS_API_KEY)
  --deadline-ms N      deadline of each call, retries included (default: 5000)`;

const EXIT_CODES = `Exit codes: 0 done, 1 failed (the server refused the call, a file could not be read),
2 bad usage, 69 the platform could not be reached.`;

const UPDATER_CONNECTION = `Connection:
  --address HOST:PORT  the updater's admin API (default: $AIMASS_UPDATER_ADDRESS or
                       ${DEFAULT_UPDATER_ADDRESS}, where \`aimass dev\` serves it)
  --tenant T           tenant whose users are meant (default: $AIMASS_TENANT or ${DEFAULT_TENANT})
  --api-key KEY        sent as "authorization: Bearer KEY"; needs the admin scope
                       (default: $AIMASS_API_KEY)
  --deadline-ms N      deadline of each call, retries included (default: 5000)`;

export const MAIN_USAGE = `Usage: aimass <command> [options]

The AI Mass command line.

Commands:
  dev                      run the whole platform in this process (same as \`npm start\`)
  predict                  classify a text or a mail for a user
  feedback                 give the true label of a prediction (or of an input): trains the user's model
  models refit             rebuild a user's personal model (or every stale one) from their feedback
  models state             training progress: feedback not yet applied, a user's model, refit jobs
  eval personalization     measure what personal models gain per user profile (goals of issue 4)
  consent grant|deny|withdraw
                           record a user's consent decision for purposes (personalization, training)
  consent show             a user's current consent per purpose
  consent history          a user's consent history, verified
  erase                    erase everything held about a user (prints the erasure id; --wait follows it)
  receipt                  an erasure's receipt: each service's confirmation
  export                   everything held about a user, as JSON
  tenants create|list|show|update|suspend|resume|delete
                           tenants and their settings (the operator; an admin key: its own)
  keys create|list|revoke|rotate
                           a tenant's API keys (secrets shown once)

Run \`aimass <command> --help\` for a command's options.

Errors are printed as one line on stderr; \`--json\` prints results as JSON on stdout.
${EXIT_CODES}`;

export const DEV_USAGE = `Usage: aimass dev [--data-dir DIR]

Runs general-model, personal-model, fusion, the updater and privacy (whatever the runner
registers) in this one process, on loopback: the same as \`npm start\` without the build (run
\`npm run build\` first). The public API (fusion) listens on ${DEFAULT_ADDRESS}, the updater's admin
API (\`aimass models\`) on ${DEFAULT_UPDATER_ADDRESS}, the privacy API (\`aimass consent\`, \`erase\`,
\`receipt\`, \`export\`) on ${DEFAULT_PRIVACY_ADDRESS}; the runner's health and reflection endpoint
on 127.0.0.1:50050. The first start trains the default general model (about half a minute on two
cores).

Options:
  --data-dir DIR   where SQLite files, the event journal and models live (default: .data;
                   same as AIMASS_RUNNER__DATA_DIR)
  -h, --help       this text

Everything else is configured with the runner's AIMASS_* variables, e.g. AIMASS_LOG__LEVEL=debug,
AIMASS_RUNNER__SERVICE_PORT_BASE=0 (OS-chosen ports). Ctrl-C (SIGINT) or SIGTERM drains and stops.
Exit codes: 0 stopped cleanly, 1 failed, 78 invalid configuration.`;

export const PREDICT_USAGE = `Usage: aimass predict --user ID (--text T | --mail-file FILE) [options]

Classifies one input for one user through the public API, fused from the general model and the
user's personal model, and shows how the answer was made (strategy, models, fallbacks, timings).

Options:
  --user ID            the user (your id for them; the platform pseudonymizes it)
  --text T             classify this text
  --mail-file FILE     classify this mail (RFC 822 .eml; - reads stdin): its subject, decoded
                       plain-text body and headers are sent
  --strategy S         general | personal | interpolate | stacking | override
                       (default: the tenant's strategy)
  --top-k N            only the N most probable labels
  --components         also show the general and personal models' own answers
  --json               print the result as JSON
  -h, --help           this text

${CONNECTION}

${EXIT_CODES}`;

export const FEEDBACK_USAGE = `Usage: aimass feedback --user ID (--prediction-id P | --text T | --mail-file FILE) --label L [options]

Records the true label of an earlier prediction (or of an input given here). The user's personal
model learns from it, so the next prediction for similar input can change.

Options:
  --user ID            the user who gives the feedback
  --prediction-id P    the prediction (its id is printed by \`aimass predict\`)
  --text T             or the text itself
  --mail-file FILE     or the mail itself (.eml; - reads stdin)
  --label L            the true label (one of the model's labels, e.g. ham or spam)
  --idempotency-key K  the same key is recorded once, so repeating the command is safe
                       (default: a new random key, printed)
  --occurred-at TIME   when the user gave it, ISO 8601 (default: now, by the server)
  --json               print the result as JSON
  -h, --help           this text

${CONNECTION}

${EXIT_CODES}`;

export const EVAL_USAGE = `Usage: aimass eval personalization [options]

Simulates users with their own tastes on the SpamAssassin corpus, streams each user's mail
through the public API (Predict, then Feedback on every mistake and on a share of correct
answers) and measures each user's error on held-out mail of their own after 10, 50 and 200
feedback events: general model only, personal model only, and fused. Profiles:

  newsletter-averse  commercial newsletters (the corpus's hard-ham group) are unwanted
  insurance-agent    wants the insurance-marketing mail (from insurancemail.net and insiq.us)
                     the corpus calls spam
  list-muter         mutes the rpm-list (List-Id rpm-zzzlist.freshrpms.net) the corpus calls ham
  neutral            agrees with the corpus (at least 2 users)

Goals (issue 4): divergent users' fused error after 50 feedback events at most half the general
model's; neutral users' fused error at most the general model's + 0.5 points at every checkpoint.

Without --address it starts the one-process platform (the runner, built with \`npm run build\`)
in a temporary data directory and stops it at the end.

Feedback is applied by the updater shortly after Feedback returns. Before measuring a user at a
checkpoint the evaluation waits (up to ${SETTLE_TIMEOUT_S} s) until the updater has applied that user's
feedback; between checkpoints the user's next predictions race the updates, as real users' do.

Options:
  --json FILE              write the figures as JSON (per profile and checkpoint: error_general,
                           error_personal, error_fused, counts; per user in "users")
  --plot FILE.svg          write the plot (error against feedback count per profile) as SVG and
                           a PNG beside it (default: beside --json, else eval-results/personalization.svg)
  --users-per-profile N    simulated users per profile (default 2; neutral has at least 2)
  --seed S                 sampling and feedback seed (default 1)
  --quick                  smoke run: 1 user per divergent profile, shorter streams, 150 held-out
                           mails, checkpoints 10 and 50
  --stream-length N        mails in each user's stream at most (default 2400, --quick 800)
  --held-out N             held-out mails per user (default 600, --quick 150)
  --feedback-share X       share of correct answers the user confirms (default 0.1)
  --checkpoints LIST       feedback counts to measure at (default 10,50,200; 0 is always measured)
  --fused-strategy S       default | interpolate | stacking | override: what "fused" means
                           (default: the tenant's strategy)
  --input FORM             mail (subject, decoded body, headers; default) or raw (message/rfc822 bytes)
  --concurrency N          users simulated at the same time (default 4)
  --run-id ID              part of every simulated user id (default: random), so a second run on
                           the same platform starts from users with no personal model
  --data-dir DIR           data directory of the platform started without --address
                           (default: a temporary one, removed afterwards)
  --updater-address A      the updater's admin API, asked whether a user's feedback is applied
                           (default: the updater of the platform the evaluation starts, if it runs
                           one; with --address: $AIMASS_UPDATER_ADDRESS or ${DEFAULT_UPDATER_ADDRESS});
                           none: do not wait (a platform whose Feedback trains directly)
  --dry-run                build the users and print the profiles' slices; no platform needed
  --strict                 exit 1 when a goal is not met
  -h, --help               this text

${CONNECTION}

Progress goes to stderr, the table to stdout.
Exit codes: 0 done (goals are reported; --strict enforces them), 1 failed (e.g. the updater did
not apply a user's feedback in time) or a goal not met with --strict, 2 bad usage,
69 the platform could not be reached (nor its updater) or does not serve the public API,
130 stopped with Ctrl-C (the platform it started is stopped too).`;

export const MODELS_USAGE = `Usage: aimass models <refit | state> [options]

Training control through the updater (aimass.v1.UpdaterAdminService).

Commands:
  refit    queue a rebuild of one user's personal model, or of every stale one, from their
           feedback history
  state    feedback not yet applied, one user's model and its training, recent refit jobs

Run \`aimass models <command> --help\` for its options.`;

export const MODELS_REFIT_USAGE = `Usage: aimass models refit (--user ID | --all [--include-current]) [options]

Queues a refit: the user's personal model (or every user's) is rebuilt from their feedback
history on the tenant's current general model, or on the one given. Users whose model is paired
with another general version are answered with the general model alone until refitted; \`--all\`
refits only those unless --include-current. Prints the job: id, state, users done of total, the
target general model.

Options:
  --user ID                refit this user (your id for them; the updater pseudonymizes it)
  --all                    refit the tenant's users whose model is paired with another general
                           version
  --include-current        with --all: every user with a model, also those already on the target
  --general-model M        NAME[:VERSION] to refit on (default: the tenant's current general model;
                           NAME alone: its current version)
  --wait                   poll until the job completed or failed, with progress on stderr;
                           exit 1 if it failed (Ctrl-C stops waiting, not the job)
  --json                   print the job as JSON
  -h, --help               this text

${UPDATER_CONNECTION}

Exit codes: 0 queued (with --wait: completed), 1 failed (the updater refused the call; with
--wait: the job failed), 2 bad usage, 69 the updater could not be reached.`;

export const MODELS_STATE_USAGE = `Usage: aimass models state [--user ID] [options]

Training progress as the updater sees it: the tenant's feedback events not yet received by the
updater (its consumer lag), refit jobs (running ones first, then the most recent) and, with
--user, that user's model: its pseudonym, current version, the general model it is paired with,
events received but not yet applied, the last applied stream sequence, when it was last trained
and whether a refit is pending.

Options:
  --user ID                also report this user
  --json                   print the state as JSON
  -h, --help               this text

${UPDATER_CONNECTION}

Exit codes: 0 done, 1 failed (the updater refused the call), 2 bad usage,
69 the updater could not be reached.`;

const PRIVACY_CONNECTION = `Connection:
  --address HOST:PORT  the privacy API (default: $AIMASS_PRIVACY_ADDRESS or
                       ${DEFAULT_PRIVACY_ADDRESS}, where \`aimass dev\` serves it)
  --tenant T           tenant the user belongs to (default: $AIMASS_TENANT or ${DEFAULT_TENANT})
  --api-key KEY        sent as "authorization: Bearer KEY"; needs the consent scope
                       (default: $AIMASS_API_KEY)
  --deadline-ms N      deadline of each call, retries included (default: 5000)`;

const PRIVACY_EXIT_CODES = `Exit codes: 0 done, 1 failed (the service refused the call), 2 bad usage,
69 the privacy service could not be reached.`;

export const CONSENT_USAGE = `Usage: aimass consent <grant | deny | withdraw | show | history> [options]

A user's consent per purpose, kept by the privacy service in a tamper-evident history:
  personalization   predictions may use the user's personal model
  training          the user's feedback may be stored and learnt from
Without a recorded decision the tenant's default applies (out of the box: not granted).

Commands:
  grant      record that the user agreed
  deny       record that the user declined
  withdraw   record that the user took back an earlier grant
  show       the user's current decision per purpose
  history    every decision, oldest first, with the hash chain verified

Run \`aimass consent <command> --help\` for its options.`;

const consentSetUsage = (verb: 'grant' | 'deny' | 'withdraw', what: string) => `Usage: aimass consent ${verb} --user ID --purpose P[,P] [options]

Records that the user ${what}, for each purpose named, and prints the records.
The privacy service appends each to the user's history and announces a change to the services
that enforce consent before it answers.

Options:
  --user ID            the user (your id for them; the service pseudonymizes it)
  --purpose LIST       personalization, training, or both: personalization,training
  --policy-version V   the version of the policy text the user saw; required
                       (default: $AIMASS_POLICY_VERSION)
  --source S           where the decision was made, e.g. web-settings, support-ticket:4711
                       (default: aimass-cli)
  --json               print the records as JSON
  -h, --help           this text

${PRIVACY_CONNECTION}

${PRIVACY_EXIT_CODES}`;

export const CONSENT_GRANT_USAGE = consentSetUsage('grant', 'agreed');
export const CONSENT_DENY_USAGE = consentSetUsage('deny', 'declined');
export const CONSENT_WITHDRAW_USAGE = consentSetUsage('withdraw', 'took back an earlier grant');

export const CONSENT_SHOW_USAGE = `Usage: aimass consent show --user ID [--purpose P[,P]] [options]

The user's current decision per purpose: its state, whether it is the tenant's default (never
decided), and the record it rests on (when, policy version, source).

Options:
  --user ID            the user
  --purpose LIST       only these purposes (default: all)
  --json               print the decisions as JSON
  -h, --help           this text

${PRIVACY_CONNECTION}

${PRIVACY_EXIT_CODES}`;

export const CONSENT_HISTORY_USAGE = `Usage: aimass consent history --user ID [--purpose P] [options]

Every consent decision of the user, oldest first, as the privacy service verified it: each
record's hash and its link to the previous one. A history altered outside the service is refused
(exit 1) naming the first record that fails.

Options:
  --user ID            the user
  --purpose P          only this purpose's records
  --json               print the history as JSON
  -h, --help           this text

${PRIVACY_CONNECTION}

${PRIVACY_EXIT_CODES}`;

export const ERASE_USAGE = `Usage: aimass erase --user ID [--reason R] [--wait [--timeout S]] [options]

Erases everything held about the user: the privacy service writes a tombstone (late events for
the user are dropped from then on), then every service deletes what it holds and confirms. Prints
the erasure id; \`aimass receipt ID\` shows each service's confirmation. A user is erased once:
running it again prints the same erasure.

Options:
  --user ID            the user
  --reason R           why, for the audit trail, e.g. gdpr-art17 (keep personal data out of it)
  --wait               follow the erasure until every service confirmed, with progress on
                       stderr, then print the receipt (Ctrl-C stops waiting, not the erasure)
  --timeout S          with --wait: give up after S seconds, exit 1 naming the services still
                       pending (default: ${ERASE_TIMEOUT_S})
  --json               print the result (with --wait: the receipt) as JSON
  -h, --help           this text

${PRIVACY_CONNECTION}

Exit codes: 0 requested (with --wait: completed), 1 failed (the service refused the call; with
--wait: not complete in time), 2 bad usage, 69 the privacy service could not be reached.`;

export const RECEIPT_USAGE = `Usage: aimass receipt ERASURE_ID [options]

The record of an erasure: its status, the erased user's pseudonym, when it was requested, when the
user's data key was destroyed, when it completed, and each service's confirmation (status, time,
items deleted, detail).

Options:
  --json               print the receipt as JSON
  -h, --help           this text

${PRIVACY_CONNECTION}

${PRIVACY_EXIT_CODES}`;

export const EXPORT_USAGE = `Usage: aimass export --user ID [--out FILE] [options]

Everything held about the user as one JSON document (consents with their history, feedback,
model versions and their metadata), on stdout or in a file.

Options:
  --user ID            the user
  --out FILE           write the document to FILE (readable by its owner only) instead of stdout
  -h, --help           this text

${PRIVACY_CONNECTION}

Exit codes: 0 done, 1 failed (the service refused the call, the file could not be written),
2 bad usage, 69 the privacy service could not be reached.`;

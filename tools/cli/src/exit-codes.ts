/** Done (for `eval`, goals are reported; `--strict` makes an unmet goal a failure). */
export const EXIT_OK = 0;
/** Anything else went wrong: the server refused the call, a file could not be read, an unmet goal with `--strict`. */
export const EXIT_FAILURE = 1;
/** Bad command line. */
export const EXIT_USAGE = 2;
/** sysexits.h EX_UNAVAILABLE: the platform could not be reached (or does not serve what was asked). */
export const EXIT_UNAVAILABLE = 69;
/** Stopped by Ctrl-C (128 + SIGINT), as shells report it. */
export const EXIT_INTERRUPTED = 130;

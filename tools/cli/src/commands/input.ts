import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Input } from '@aimass/sdk';
import type { InputSource } from '../args.js';
import { InputFileError } from '../format.js';
import type { CliIo } from '../io.js';
import { mailFromRfc822 } from '../mail.js';

/** The input a command names: its text, or the mail in a file (`-`: stdin). */
export async function readInput(source: InputSource, io: CliIo): Promise<Input> {
  if ('text' in source) return source.text;
  let raw: string;
  if (source.mailFile === '-') {
    raw = await io.readStdin();
  } else {
    const path = resolve(io.cwd, source.mailFile);
    try {
      raw = await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new InputFileError(`cannot read --mail-file ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
    }
  }
  return mailFromRfc822(raw);
}

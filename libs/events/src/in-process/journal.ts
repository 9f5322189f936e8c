import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { StreamSpec } from '../types.js';

export type JournalRecord =
  /** A stream declared or changed; `last` keeps sequences rising after compaction dropped its events. */
  | { k: 's'; spec: StreamSpec; last?: number }
  /** A stored event (data base64). */
  | { k: 'e'; s: string; q: number; j: string; d: string; h: Record<string, string>; i: string; t: number }
  /** A consumer group partition moved past sequence q (acked or terminated). */
  | { k: 'a'; s: string; g: string; p: number; q: number };

/**
 * Append-only JSON-lines file. A record is written before the publish it records is
 * acknowledged, so an acknowledged event survives a crash of the process (and, with fsync, of
 * the machine). A torn last line (crash mid-write) is ignored when reading.
 */
export class Journal {
  constructor(
    readonly path: string,
    private readonly fsync: boolean,
  ) {}

  read(): JournalRecord[] {
    if (!existsSync(this.path)) return [];
    const records: JournalRecord[] = [];
    for (const line of readFileSync(this.path, 'utf8').split('\n')) {
      if (line.length === 0) continue;
      try {
        records.push(JSON.parse(line) as JournalRecord);
      } catch {
        // Only the last line can be torn; anything after it was never acknowledged.
        break;
      }
    }
    return records;
  }

  append(record: JournalRecord): void {
    this.write(this.path, 'a', `${JSON.stringify(record)}\n`);
  }

  /**
   * Replaces the file atomically (write aside, then rename): a crash leaves the old file or the
   * new one, never a mix. The old file's bytes go with it, which is what `purge` relies on.
   */
  rewrite(records: JournalRecord[]): void {
    const aside = `${this.path}.compact`;
    this.write(aside, 'w', records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    renameSync(aside, this.path);
    // The rename itself must reach the disk too, or a machine crash could bring the old file back.
    if (this.fsync) {
      const dir = openSync(dirname(this.path), 'r');
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    }
  }

  private write(path: string, flags: 'a' | 'w', text: string): void {
    const fd = openSync(path, flags);
    try {
      writeSync(fd, text);
      if (this.fsync) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}

import type { TrainGeneralProgress } from './train.js';

export interface ProgressSink {
  isTTY?: boolean;
  write(chunk: string): unknown;
}

/**
 * Renders training progress on stderr: on a terminal one line redrawn in place (phase, bar,
 * percent, throughput, loss); elsewhere (CI logs, pipes) one line per phase end and per epoch,
 * so logs stay readable.
 */
export function progressPrinter(sink: ProgressSink): (p: TrainGeneralProgress) => void {
  const tty = sink.isTTY === true;
  let lastDraw = 0;
  let open = false;
  const draw = (line: string, final: boolean) => {
    if (tty) {
      const now = performance.now();
      if (!final && now - lastDraw < 100) return;
      lastDraw = now;
      sink.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
      open = !final;
    } else if (final) {
      sink.write(`${line}\n`);
    }
  };
  const done = (line: string) => {
    if (open && tty) sink.write('\r\x1b[2K');
    open = false;
    sink.write(`${line}\n`);
  };
  return (p) => {
    switch (p.phase) {
      case 'load':
        done(`loaded ${p.mails} mails in ${seconds(p.elapsedMs)}`);
        break;
      case 'featurize':
        draw(`featurize ${bar(p.done / p.total)} ${percent(p.done / p.total)} ${p.done}/${p.total} mails`, false);
        if (p.done === p.total) done(`featurized ${p.total} mails in ${seconds(p.elapsedMs)}`);
        break;
      case 'train': {
        const line = `epoch ${p.epoch}/${p.epochs} ${bar(p.processed / p.total)} ${percent(p.processed / p.total)} ${Math.round(p.examplesPerSecond)} mails/s loss ${p.loss.toFixed(4)}`;
        draw(line, p.processed === p.total);
        break;
      }
      case 'evaluate':
        done(`evaluated ${p.total} held-out mails in ${seconds(p.elapsedMs)}`);
        break;
      case 'export':
        done(`exported ONNX (${(p.bytes / 1e6).toFixed(1)} MB) in ${seconds(p.elapsedMs)}`);
        break;
      case 'write':
        done(`wrote ${p.path}`);
        break;
    }
  };
}

function bar(fraction: number, width = 24): string {
  const filled = Math.round(Math.min(Math.max(fraction, 0), 1) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

function percent(fraction: number): string {
  return `${Math.floor(fraction * 100)}%`.padStart(4);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

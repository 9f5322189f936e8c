/**
 * A small reader for protobuf text format, the syntax of Triton's `config.pbtxt`. It knows no
 * schema: a message becomes an object whose fields are arrays of values (text format repeats a
 * field by writing it again, or with a `[a, b]` list), and enum names stay strings. Comments
 * (`#`), quoted strings with escapes, numbers, `field: value`, `field { ... }`, `field: { ... }`
 * and `field [ {...}, {...} ]` are supported; extensions and `Any` expansions are not.
 */
export type PbValue = string | number | boolean | PbMessage;
export interface PbMessage {
  [field: string]: PbValue[];
}

export class PbtxtError extends Error {
  constructor(message: string, readonly line: number) {
    super(`line ${line}: ${message}`);
    this.name = 'PbtxtError';
  }
}

type Token = { kind: 'ident' | 'string' | 'number' | 'punct'; text: string; line: number };

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (/\s/.test(c)) {
      i++;
    } else if (c === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if ('{}[]:,;<>'.includes(c)) {
      tokens.push({ kind: 'punct', text: c, line });
      i++;
    } else if (c === '"' || c === "'") {
      let s = '';
      i++;
      while (i < text.length && text[i] !== c) {
        if (text[i] === '\n') throw new PbtxtError('unterminated string', line);
        if (text[i] === '\\') {
          const e = text[i + 1] ?? '';
          s += ({ n: '\n', t: '\t', r: '\r', '\\': '\\', '"': '"', "'": "'" } as Record<string, string>)[e] ?? e;
          i += 2;
        } else {
          s += text[i];
          i++;
        }
      }
      if (i >= text.length) throw new PbtxtError('unterminated string', line);
      i++;
      // Adjacent strings concatenate, as in C.
      const prev = tokens[tokens.length - 1];
      if (prev?.kind === 'string') prev.text += s;
      else tokens.push({ kind: 'string', text: s, line });
    } else {
      const m = /^[-+]?[A-Za-z0-9_.]+/.exec(text.slice(i));
      if (!m) throw new PbtxtError(`unexpected character '${c}'`, line);
      const word = m[0];
      const isNumber = /^[-+]?(\d|\.\d)/.test(word) || /^[-+]?(inf|infinity|nan)$/i.test(word);
      tokens.push({ kind: isNumber ? 'number' : 'ident', text: word, line });
      i += word.length;
    }
  }
  return tokens;
}

function parseNumber(t: Token): number {
  const w = /^[-+]?[\d.][\d.eE+-]*[fF]$/.test(t.text) ? t.text.slice(0, -1) : t.text;
  const lower = w.toLowerCase();
  if (/^[-+]?(inf|infinity)$/.test(lower)) return lower.startsWith('-') ? -Infinity : Infinity;
  if (/^[-+]?nan$/.test(lower)) return NaN;
  const n = /^[-+]?0x/i.test(w) ? Number.parseInt(w, 16) : Number(w);
  if (Number.isNaN(n)) throw new PbtxtError(`invalid number '${t.text}'`, t.line);
  return n;
}

/** Parses protobuf text format into a schema-less tree (see the module comment). */
export function parsePbtxt(text: string): PbMessage {
  const tokens = tokenize(text);
  let pos = 0;
  const peek = () => tokens[pos];
  const lastLine = () => tokens[tokens.length - 1]?.line ?? 1;
  const expect = (p: string) => {
    const t = tokens[pos];
    if (!t || t.kind !== 'punct' || t.text !== p) {
      throw new PbtxtError(`expected '${p}'${t ? ` but found '${t.text}'` : ' at end of input'}`, t?.line ?? lastLine());
    }
    pos++;
  };
  const isPunct = (p: string) => {
    const t = peek();
    return t?.kind === 'punct' && t.text === p;
  };

  const parseScalar = (): PbValue => {
    const t = tokens[pos++];
    if (!t) throw new PbtxtError('expected a value at end of input', lastLine());
    if (t.kind === 'string') return t.text;
    if (t.kind === 'number') return parseNumber(t);
    if (t.kind === 'ident') {
      if (t.text === 'true' || t.text === 'True' || t.text === 't') return true;
      if (t.text === 'false' || t.text === 'False' || t.text === 'f') return false;
      return t.text;
    }
    throw new PbtxtError(`expected a value but found '${t.text}'`, t.line);
  };

  const parseMessageBody = (close: string | undefined): PbMessage => {
    const msg: PbMessage = {};
    for (;;) {
      const t = peek();
      if (!t) {
        if (close) throw new PbtxtError(`missing '${close}'`, lastLine());
        return msg;
      }
      if (t.kind === 'punct' && t.text === close) {
        pos++;
        return msg;
      }
      if (t.kind !== 'ident') throw new PbtxtError(`expected a field name but found '${t.text}'`, t.line);
      pos++;
      const values = (msg[t.text] ??= []);
      const colon = isPunct(':');
      if (colon) pos++;
      const readOne = (): PbValue => {
        if (isPunct('{')) {
          pos++;
          return parseMessageBody('}');
        }
        if (isPunct('<')) {
          pos++;
          return parseMessageBody('>');
        }
        if (!colon) throw new PbtxtError(`expected ':' or '{' after '${t.text}'`, t.line);
        return parseScalar();
      };
      if (isPunct('[')) {
        pos++;
        if (!isPunct(']')) {
          for (;;) {
            values.push(readOne());
            if (isPunct(',')) {
              pos++;
              continue;
            }
            break;
          }
        }
        expect(']');
      } else {
        values.push(readOne());
      }
      if (isPunct(',') || isPunct(';')) pos++;
    }
  };

  return parseMessageBody(undefined);
}

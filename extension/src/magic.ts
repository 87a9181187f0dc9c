/**
 * The magic line of a `%%dspex` cell, and which body follows it.
 *
 * The subcommands are those of `dspex_lab/jupyter/magics.py`: `%%dspex [name]` and
 * `%%dspex spec [name]` hold a spec, `%%dspex sql` a query, `%%dspex optimize` more
 * options (one or more per line, `#` comments); `runs`, `stop`, `store` and `export`
 * take no body. tests/test_extension.py checks this list against the magic's own.
 */

import type { StringStream } from '@codemirror/language';

import type { Token } from './tokens';

export type Body = 'spec' | 'sql' | 'options' | 'none';

const BODIES = new Map<string, Body>([
  ['spec', 'spec'],
  ['sql', 'sql'],
  ['optimize', 'options'],
  ['runs', 'none'],
  ['stop', 'none'],
  ['store', 'none'],
  ['export', 'none'],
  ['help', 'none']
]);

/**
 * Whether a cell's text is a `%%dspex` cell. IPython drops leading blank lines and the
 * first line's indentation before it looks for a cell magic, and so does this.
 */
export const DSPEX_CELL = /^(?:[ \t]*\r?\n)*[ \t]*%%dspex(?=[ \t\r\n]|$)/;

export interface IMagicState {
  /** Words read on the magic line after `%%dspex`. */
  words: number;
  /** The body the subcommand takes. */
  body: Body;
}

/** The `%%dspex` token itself, when the line starts with it. */
export function magicStart(stream: StringStream): Token | null {
  stream.eatSpace();
  return stream.match(/^%%dspex(?=\s|$)/) ? 'dxMagic' : null;
}

/** One word of the magic line after `%%dspex`. */
export function magicToken(stream: StringStream, st: IMagicState): Token | null {
  if (stream.eatSpace()) {
    return null;
  }
  return argumentToken(stream, st);
}

function argumentToken(stream: StringStream, st: IMagicState): Token | null {
  const first = st.words === 0;
  st.words += 1;
  if (stream.match(/^--?[A-Za-z][\w-]*/)) {
    stream.eat('=');
    return 'dxOption';
  }
  if (stream.match(/^-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?=\s|$)/)) {
    return 'dxNumber';
  }
  if (stream.match(/^(?:'[^']*'?|"[^"]*"?)/)) {
    return 'dxString';
  }
  stream.match(/^\S+/);
  const word = stream.current();
  const body = first ? BODIES.get(word) : undefined;
  if (body) {
    st.body = body;
    return 'dxCommand';
  }
  return 'dxBind';
}

/** A line of a `%%dspex optimize` body: options, numbers, `#` comments. */
export function optionsToken(stream: StringStream, st: IMagicState): Token | null {
  if (stream.eatSpace()) {
    return null;
  }
  if (stream.peek() === '#' && stream.string.slice(0, stream.pos).trim() === '') {
    stream.skipToEnd();
    return 'dxComment';
  }
  st.words = 1;
  return argumentToken(stream, st);
}

/**
 * The language of a `%%dspex` cell: the magic line, then the body its subcommand takes.
 *
 * One stream language for every form, so the body's kind follows the magic line as it
 * is typed (`%%dspex` -> `%%dspex sql` turns the body into SQL on the same keystroke)
 * and CodeMirror re-tokenizes only from the changed line on.
 */

import { LanguageSupport, StreamLanguage, StringStream } from '@codemirror/language';

import { Body, magicStart, magicToken, optionsToken } from './magic';
import { copySpec, ISpecState, specToken, startSpec } from './spec';
import { ISqlState, sqlToken } from './sql';
import { Token, tokenTable } from './tokens';

interface ICellState {
  /** Before the magic line (blank lines), on it, or in the body. */
  at: 'before' | 'magic' | 'body';
  body: Body;
  words: number;
  spec: ISpecState;
  sql: ISqlState;
}

function token(stream: StringStream, st: ICellState): Token | null {
  if (st.at === 'magic' && stream.sol()) {
    st.at = 'body';
  }
  if (st.at === 'before') {
    const magic = magicStart(stream);
    if (magic) {
      st.at = 'magic';
      return magic;
    }
    if (stream.eol()) {
      return null; // a blank line before the magic
    }
    st.at = 'body'; // not a %%dspex cell after all: read it as a spec
  }
  if (st.at === 'magic') {
    return magicToken(stream, st);
  }
  switch (st.body) {
    case 'sql':
      return sqlToken(stream, st.sql);
    case 'options':
      return optionsToken(stream, st);
    case 'none':
      stream.skipToEnd();
      return null;
    default:
      return specToken(stream, st.spec);
  }
}

export const dspexLanguage = StreamLanguage.define<ICellState>({
  name: 'dspex',
  startState: () => ({
    at: 'before',
    body: 'spec',
    words: 0,
    spec: startSpec(),
    sql: { comment: false }
  }),
  copyState: st => ({ ...st, spec: copySpec(st.spec), sql: { ...st.sql } }),
  token,
  blankLine: st => {
    if (st.at === 'magic') {
      st.at = 'body';
    }
  },
  tokenTable,
  languageData: { commentTokens: { line: '#' } }
});

export const dspexSupport = new LanguageSupport(dspexLanguage);

/**
 * Tokens of a `%%dspex sql` cell's body: DuckDB SQL over the store.
 *
 * Small on purpose (keywords, strings, quoted identifiers, numbers, comments,
 * operators) plus what only this magic has: `{name}` / `{obj.attr}` and `:name`, the
 * notebook values the magic binds as query parameters (never pasted into the SQL).
 */

import type { StringStream } from '@codemirror/language';

import type { Token } from './tokens';

export interface ISqlState {
  /** Inside a `/* ... *\/` comment that goes on over lines. */
  comment: boolean;
}

const KEYWORDS = new Set(
  (
    'all and any as asc between by case cast collate cross current_date current_time ' +
    'current_timestamp delete desc describe distinct else end except exists explain false ' +
    'filter first following from full group having ilike in inner insert intersect interval ' +
    'into is join last lateral left like limit natural not null nulls offset on or order ' +
    'outer over partition pivot preceding qualify range recursive replace right row rows ' +
    'select semi anti set show similar summarize table then true unbounded union unnest ' +
    'unpivot update using values when where window with within exclude columns asof ' +
    'positional struct list map array boolean bigint integer int double float real varchar ' +
    'text date time timestamp json uuid decimal hugeint'
  ).split(' ')
);

export function sqlToken(stream: StringStream, st: ISqlState): Token | null {
  if (st.comment) {
    return blockComment(stream, st);
  }
  if (stream.eatSpace()) {
    return null;
  }
  if (stream.match('--')) {
    stream.skipToEnd();
    return 'dxComment';
  }
  if (stream.match('/*')) {
    st.comment = true;
    return blockComment(stream, st);
  }
  if (stream.match(/^'(?:[^']|'')*'?/)) {
    return 'dxString';
  }
  if (stream.match(/^"(?:[^"]|"")*"?/)) {
    return 'dxName';
  }
  if (stream.match(/^\{[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*\}/)) {
    return 'dxParam';
  }
  if (stream.match('::')) {
    return 'dxOp';
  }
  if (stream.match(/^:[A-Za-z_]\w*/)) {
    return 'dxParam';
  }
  if (stream.match(/^(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?/)) {
    return 'dxNumber';
  }
  const word = stream.match(/^[A-Za-z_][\w$]*/);
  if (word) {
    const lower = stream.current().toLowerCase();
    if (lower === 'true' || lower === 'false' || lower === 'null') {
      return 'dxAtom';
    }
    return KEYWORDS.has(lower) ? 'dxSqlKeyword' : 'dxName';
  }
  if (stream.match(/^(?:<>|!=|<=|>=|\|\||->>|->|[-+*/%<>=~^&|!])/)) {
    return 'dxOp';
  }
  const ch = stream.next() ?? '';
  return '()[]{}'.includes(ch) ? 'dxBracket' : 'dxPunct';
}

function blockComment(stream: StringStream, st: ISqlState): Token {
  while (!stream.eol()) {
    if (stream.match('*/')) {
      st.comment = false;
      break;
    }
    stream.next();
  }
  return 'dxComment';
}

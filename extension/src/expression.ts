/**
 * Tokens of a constraint, a `when` condition or a signature inside a spec.
 *
 * The grammar is the one `dspex_lab/variables/_constraints.py` parses: comparison
 * operators, `->` (implication), `and`/`or`/`not`/`in`, string, number and
 * true/false/null literals, lists and parentheses, dotted and indexed names. The
 * slips that parser refuses with a hint (`=`, `&&`, `||`, `!`, `=>`) are marked
 * invalid here, so they show before the cell runs. A signature
 * (`question, context -> answer: int`) uses the same tokens plus `:` before a type.
 */

import type { StringStream } from '@codemirror/language';

import type { Token } from './tokens';

/** Where an expression is, as far as its tokens need to know. */
export interface IExpressionState {
  /** No token read yet: a quote here wraps the whole expression. */
  start: boolean;
  /** The YAML quote around the whole expression (`- "a -> b"`), or '' if plain. */
  wrap: string;
  /** Open `(` and `[` inside the expression. */
  nest: number;
  /** Inside a YAML flow collection, where an unquoted `,`, `]` or `}` ends the value. */
  inFlow: boolean;
}

const OPERATOR = /^(?:->|==|!=|<=|>=|<|>)/;
const SLIP = /^(?:&&|\|\||=>|[=!&|])/;
const LOGIC = /^(?:and|or|not|in)(?![\w.])/;
const ATOM = /^(?:true|false|null|True|False|None)(?![\w.])/;
const NUMBER = /^(?:\d[\w.]*|\.\d[\w.]*)/;
const NAME = /^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[\d+\])*/;

/**
 * Reads one token of the expression, or returns `undefined` without consuming anything
 * when the expression ends before the next character (the YAML around it goes on).
 */
export function expressionToken(
  stream: StringStream,
  st: IExpressionState
): Token | null | undefined {
  if (stream.eatSpace()) {
    return null;
  }
  const ch = stream.peek() ?? '';
  if (st.start) {
    st.start = false;
    if (ch === '"' || ch === "'") {
      stream.next();
      st.wrap = ch;
      return 'dxPunct';
    }
  }
  if (st.wrap) {
    if (ch === st.wrap) {
      // YAML escapes a single quote inside '...' by doubling it: '' is part of the text
      if (ch === "'" && stream.string.charAt(stream.pos + 1) === "'") {
        return readString(stream, "''");
      }
      stream.next();
      st.wrap = '';
      return 'dxPunct';
    }
  } else {
    if (ch === '#' && /\s/.test(stream.string.charAt(stream.pos - 1))) {
      return undefined; // a YAML comment ends a plain value
    }
    if (st.inFlow && st.nest === 0 && (ch === ',' || ch === ']' || ch === '}')) {
      return undefined;
    }
  }
  if (stream.match(OPERATOR)) {
    return 'dxOp';
  }
  if (stream.match(SLIP)) {
    return 'dxInvalid';
  }
  if (stream.match(LOGIC)) {
    return 'dxLogic';
  }
  if (stream.match(ATOM)) {
    return 'dxAtom';
  }
  if (stream.match(NUMBER)) {
    return 'dxNumber';
  }
  if (ch === '"' || ch === "'") {
    if (st.wrap === "'" && ch === "'") {
      return readString(stream, "''");
    }
    return readString(stream, ch);
  }
  if (stream.match(NAME)) {
    return 'dxName';
  }
  stream.next();
  if (ch === '(' || ch === '[') {
    st.nest += 1;
    return 'dxBracket';
  }
  if (ch === ')' || ch === ']') {
    st.nest = Math.max(0, st.nest - 1);
    return 'dxBracket';
  }
  if (ch === ',' || ch === ':' || ch === '-') {
    return ch === '-' ? 'dxOp' : 'dxPunct';
  }
  return 'dxInvalid';
}

/**
 * A string literal opened by `quote` ('"', "'" or, inside a '...'-wrapped YAML value,
 * the doubled "''"); backslash escapes as in the spec parser. An unclosed literal runs
 * to the end of the line.
 */
function readString(stream: StringStream, quote: string): Token {
  stream.pos += quote.length;
  while (!stream.eol()) {
    if (stream.match(quote)) {
      return 'dxString';
    }
    if (stream.next() === '\\' && quote.length === 1) {
      stream.next();
    }
  }
  return 'dxString';
}

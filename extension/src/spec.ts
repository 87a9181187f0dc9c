/**
 * Tokens of a spec: the body of a `%%dspex` / `%%dspex spec` cell (docs/spec.md).
 *
 * A spec is one YAML document; this tokenizer knows enough YAML to tell keys from
 * values (block and flow mappings, lists, quoted and block scalars, comments) and knows
 * where the spec language puts expressions, which it hands to {@link expressionToken}:
 * the items of `constraints` (a block list, a flow list or a single value), every
 * `when:` value, and `signature:`. Everything else is a value: a string, a number or
 * an atom (`true`, `null`, and YAML 1.1's `yes`/`off`, which PyYAML reads as booleans).
 *
 * It never fails: text that is not valid YAML still gets the tokens it most likely
 * means, since the cell is being typed.
 */

import type { StringStream } from '@codemirror/language';

import { expressionToken, IExpressionState } from './expression';
import type { Token } from './tokens';

export interface ISpecState {
  /** The top-level key the current line belongs to. */
  section: string;
  /** Open YAML flow brackets, innermost last (`{` or `[`). */
  flow: string;
  /** The next scalar may be a mapping key. */
  expectKey: boolean;
  /** A key was read and its `:` is next. */
  keyRead: string | null;
  /** The value after this `:` is an expression ('' when it is not). */
  exprValue: boolean;
  /** Flow depth whose items are constraint expressions (`constraints: [a, b]`); -1 none. */
  exprList: number;
  /** Inside an expression, and where it is. */
  expr: IExpressionState | null;
  /** Indentation of the line the expression started on (a plain one may continue below). */
  exprIndent: number;
  /** The quote of a YAML quoted scalar that goes on over lines ('' none). */
  quote: string;
  /** Lines indented deeper than this belong to a block scalar (`|`, `>`); -1 none. */
  block: number;
}

export function startSpec(): ISpecState {
  return {
    section: '',
    flow: '',
    expectKey: true,
    keyRead: null,
    exprValue: false,
    exprList: -1,
    expr: null,
    exprIndent: 0,
    quote: '',
    block: -1
  };
}

export function copySpec(st: ISpecState): ISpecState {
  return { ...st, expr: st.expr ? { ...st.expr } : null };
}

// Values end before a comment, the end of the line or (in a flow collection) , ] }
const END_BLOCK = '(?=\\s+#|\\s*$)';
const END_FLOW = '(?=\\s+#|\\s*(?:$|[,\\]}]))';
const NUMBER = '[-+]?(?:\\d[\\d_]*(?:\\.[\\d_]*)?|\\.\\d[\\d_]*)(?:[eE][-+]?\\d+)?|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN)';
const ATOM =
  'true|True|TRUE|false|False|FALSE|yes|Yes|YES|no|No|NO|on|On|ON|off|Off|OFF|null|Null|NULL|~';
const NUMBER_BLOCK = new RegExp(`^(?:${NUMBER})${END_BLOCK}`);
const NUMBER_FLOW = new RegExp(`^(?:${NUMBER})${END_FLOW}`);
const ATOM_BLOCK = new RegExp(`^(?:${ATOM})${END_BLOCK}`);
const ATOM_FLOW = new RegExp(`^(?:${ATOM})${END_FLOW}`);
const PLAIN_BLOCK = /^.+?(?=\s+#|\s*$)/;
const PLAIN_FLOW = /^[^,\]}]+?(?=\s+#|\s*(?:$|[,\]}]))/;
// Keys: quoted, or plain up to ': ' (block keys may hold brackets: steps[0].model)
const KEY_QUOTED = /^(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*')(?=\s*:(?:\s|$|[,\]}]))/;
const KEY_BLOCK = /^[^\s#:'"{[\]},&*!|>%@`-][^#]*?(?=\s*:(?:\s|$))|^-[^\s#][^#]*?(?=\s*:(?:\s|$))/;
const KEY_FLOW = /^[^\s#:'"{[\]},][^#,[\]{}]*?(?=\s*:(?:\s|$|[,\]}]))/;
const BLOCK_SCALAR = /^[|>][-+0-9]*(?=\s+#|\s*$)/;
/** Keys whose value is an expression, wherever they appear. */
const EXPRESSION_KEYS = new Set(['when']);
/** Top-level keys whose value is an expression. */
const TOP_EXPRESSION_KEYS = new Set(['signature', 'constraints']);

export function specToken(stream: StringStream, st: ISpecState): Token | null {
  if (stream.sol()) {
    const token = startLine(stream, st);
    if (token !== undefined) {
      return token;
    }
  }
  if (st.quote) {
    return readQuoted(stream, st, st.quote);
  }
  if (st.expr) {
    const token = expressionToken(stream, st.expr);
    if (token !== undefined) {
      return token;
    }
    st.expr = null;
  }
  if (stream.eatSpace()) {
    return null;
  }
  const ch = stream.peek() ?? '';
  const inFlow = st.flow.length > 0;
  if (ch === '#' && (stream.pos === 0 || /\s/.test(stream.string.charAt(stream.pos - 1)))) {
    stream.skipToEnd();
    return 'dxComment';
  }
  if (stream.pos === 0 && stream.match(/^(?:---|\.\.\.)(?=\s|$)/)) {
    return 'dxPunct';
  }
  if (!inFlow && ch === '-' && stream.match(/^-(?=\s|$)/)) {
    st.expectKey = true;
    if (st.section === 'constraints') {
      beginExpression(stream, st);
    }
    return 'dxPunct';
  }
  if (ch === '{' || ch === '[') {
    stream.next();
    st.flow += ch;
    st.expectKey = ch === '{';
    if (ch === '[' && st.exprValue && st.section === 'constraints') {
      st.exprList = st.flow.length;
    }
    st.exprValue = false;
    st.keyRead = null;
    maybeListExpression(stream, st);
    return 'dxBracket';
  }
  if (ch === '}' || ch === ']') {
    stream.next();
    if (st.exprList === st.flow.length) {
      st.exprList = -1;
    }
    st.flow = st.flow.slice(0, -1);
    st.expectKey = false;
    return 'dxBracket';
  }
  if (ch === ',' && inFlow) {
    stream.next();
    st.expectKey = st.flow.endsWith('{');
    st.keyRead = null;
    st.exprValue = false;
    maybeListExpression(stream, st);
    return 'dxPunct';
  }
  if (st.expectKey) {
    const key = stream.match(KEY_QUOTED) || stream.match(inFlow ? KEY_FLOW : KEY_BLOCK);
    if (key) {
      const name = unquote(stream.current().trim());
      if (!inFlow && stream.start === 0) {
        st.section = name;
      }
      st.keyRead = name;
      st.expectKey = false;
      return 'dxKey';
    }
  }
  if (ch === ':' && st.keyRead !== null) {
    stream.next();
    const top = !inFlow && st.section === st.keyRead && stream.string.charAt(0) !== ' ';
    st.exprValue =
      EXPRESSION_KEYS.has(st.keyRead) || (top && TOP_EXPRESSION_KEYS.has(st.keyRead));
    st.keyRead = null;
    // a scalar on the same line is the expression; `[` opens a list of them (constraints)
    if (st.exprValue && stream.match(/^\s*[^\s[{#|>]/, false)) {
      st.exprValue = false;
      beginExpression(stream, st);
    }
    return 'dxPunct';
  }
  st.keyRead = null;
  st.expectKey = false;
  if (ch === '|' || ch === '>') {
    if (stream.match(BLOCK_SCALAR)) {
      st.block = stream.indentation();
      return 'dxPunct';
    }
  }
  if (ch === '"' || ch === "'") {
    stream.next();
    return readQuoted(stream, st, ch);
  }
  if (stream.match(inFlow ? NUMBER_FLOW : NUMBER_BLOCK)) {
    return 'dxNumber';
  }
  if (stream.match(inFlow ? ATOM_FLOW : ATOM_BLOCK)) {
    return 'dxAtom';
  }
  if (stream.match(inFlow ? PLAIN_FLOW : PLAIN_BLOCK)) {
    return 'dxString';
  }
  stream.next();
  return null;
}

/**
 * What a new line starts in: the rest of a block scalar, of a quoted scalar or of a
 * multi-line expression, or fresh block context. Returns a token when it read the line.
 */
function startLine(stream: StringStream, st: ISpecState): Token | null | undefined {
  const indent = stream.indentation();
  const blank = /^\s*$/.test(stream.string);
  if (st.block >= 0) {
    if (blank || indent > st.block) {
      stream.skipToEnd();
      return blank ? null : 'dxString';
    }
    st.block = -1;
  }
  if (st.quote || st.flow) {
    return undefined; // a quoted scalar or a flow collection goes on
  }
  if (st.expr) {
    const rest = stream.string.slice(indent);
    const continues =
      st.expr.wrap !== '' ||
      (indent > st.exprIndent && !/^(?:-\s|-$|#)/.test(rest) && !KEY_BLOCK.test(rest));
    if (!continues) {
      st.expr = null;
    }
  }
  st.expectKey = !st.expr;
  st.keyRead = null;
  st.exprValue = false;
  st.exprList = -1;
  if (indent === 0 && !blank && !st.expr) {
    st.section = '';
  }
  return undefined;
}

/** The next value is an expression (after `- ` in constraints, `when:`, `signature:`). */
function beginExpression(stream: StringStream, st: ISpecState): void {
  st.expr = { start: true, wrap: '', nest: 0, inFlow: st.flow.length > 0 };
  st.exprIndent = stream.indentation();
  st.expectKey = false;
}

/** After `[` or `,` in a list of constraints: the next item is an expression. */
function maybeListExpression(stream: StringStream, st: ISpecState): void {
  if (st.exprList === st.flow.length && st.flow.endsWith('[')) {
    beginExpression(stream, st);
  }
}

/**
 * A quoted YAML scalar from after its opening quote: `"` takes backslash escapes, `'`
 * doubles itself. An unclosed one goes on over the next lines (`st.quote`).
 */
function readQuoted(stream: StringStream, st: ISpecState, quote: string): Token {
  while (!stream.eol()) {
    const c = stream.next();
    if (c === '\\' && quote === '"') {
      stream.next();
    } else if (c === quote) {
      if (quote === "'" && stream.peek() === "'") {
        stream.next();
        continue;
      }
      st.quote = '';
      return 'dxString';
    }
  }
  st.quote = quote;
  return 'dxString';
}

function unquote(key: string): string {
  if (key.length >= 2 && (key[0] === '"' || key[0] === "'") && key.endsWith(key[0])) {
    return key.slice(1, -1);
  }
  return key;
}

/**
 * The token kinds of a `%%dspex` cell, each with a highlight tag and a CSS class.
 *
 * Every tag is a child of a standard Lezer tag, so JupyterLab's own highlight style
 * colours it from the active theme (light, dark, high contrast) without a colour of
 * ours; the `dx-spec-*` classes are added on top by {@link specHighlighter}. They are
 * what tests select and what a user stylesheet may restyle, and they appear only in
 * `%%dspex` cells (the tags are ours: no other language produces them).
 */

import { Tag, tagHighlighter, tags as t } from '@lezer/highlight';

interface IKind {
  /** The name the stream tokenizers return (a key of `tokenTable`). */
  readonly token: string;
  /** The CSS class on the token's span. */
  readonly cls: string;
  readonly tag: Tag;
}

function kind(token: string, cls: string, parent: Tag): IKind {
  return { token, cls: `dx-spec-${cls}`, tag: Tag.define(parent) };
}

/** Every kind, by the name the tokenizers use. */
export const KINDS = {
  /** `%%dspex` itself. */
  magic: kind('dxMagic', 'magic', t.meta),
  /** The subcommand on the magic line: `spec`, `sql`, `optimize`, ... */
  command: kind('dxCommand', 'command', t.keyword),
  /** `--trials`, `-o` on the magic line or in an optimize cell's body. */
  option: kind('dxOption', 'option', t.attributeName),
  /** A name bound by the cell (`%%dspex qa`, `-o df`); coloured by style/base.css. */
  bind: kind('dxBind', 'bind', t.variableName),
  /** A YAML mapping key: `signature`, `variables`, `choices`, `when`, ... */
  key: kind('dxKey', 'key', t.propertyName),
  string: kind('dxString', 'string', t.string),
  number: kind('dxNumber', 'number', t.number),
  /** `true`, `false`, `null` (and YAML's other spellings of them). */
  atom: kind('dxAtom', 'atom', t.atom),
  /** A constraint operator: `->`, `==`, `!=`, `<`, `<=`, `>`, `>=`. */
  op: kind('dxOp', 'op', t.operator),
  /** A logical word in an expression: `and`, `or`, `not`, `in`. */
  logic: kind('dxLogic', 'logic', t.operatorKeyword),
  /** A variable or field name inside an expression (`module`, `gen.temperature`). */
  name: kind('dxName', 'name', t.variableName),
  comment: kind('dxComment', 'comment', t.lineComment),
  /** `:` after a key, `-` of a list item, `,`, and the quotes around an expression. */
  punct: kind('dxPunct', 'punct', t.punctuation),
  bracket: kind('dxBracket', 'bracket', t.bracket),
  /** What the spec parser refuses in an expression: `=`, `&&`, `||`, `!`, `=>`. */
  invalid: kind('dxInvalid', 'invalid', t.invalid),
  /** A SQL keyword in a `%%dspex sql` cell. */
  sqlKeyword: kind('dxSqlKeyword', 'sql-keyword', t.keyword),
  /** A bound notebook value in a `%%dspex sql` cell: `{name}`, `{obj.attr}`, `:name`. */
  param: kind('dxParam', 'param', t.labelName)
} as const;

/** Token name -> tag, for `StreamParser.tokenTable`. */
export const tokenTable: { [name: string]: Tag } = Object.fromEntries(
  Object.values(KINDS).map(k => [k.token, k.tag])
);

/** Adds the `dx-spec-*` class of each kind to its tokens. */
export const specHighlighter = tagHighlighter(
  Object.values(KINDS).map(k => ({ tag: k.tag, class: k.cls }))
);

/** Token names the tokenizers return. */
export type Token = (typeof KINDS)[keyof typeof KINDS]['token'];

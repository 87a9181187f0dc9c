/**
 * The editor extension: `%%dspex` cells get the dspex language, other cells keep theirs.
 *
 * JupyterLab sets one language per editor (Python for every code cell of a Python
 * notebook) in a compartment of its own. This extension adds a second compartment at
 * the highest precedence, empty for ordinary cells and holding the dspex language, its
 * `dx-spec-*` class highlighter and a `dx-spec-cell` class on the editor for `%%dspex`
 * cells. The language facet takes the highest-precedence value, so the dspex language
 * wins while the compartment holds it and Python comes back the moment it is emptied.
 *
 * The choice is made from the cell's text when the editor is created, then re-made by a
 * transaction extender on every edit, in the same transaction: typing or deleting
 * `%%dspex` on the first line switches the highlighting on that keystroke, with no
 * polling and no second dispatch.
 */

import { syntaxHighlighting } from '@codemirror/language';
import { Compartment, EditorState, Extension, Prec, Text } from '@codemirror/state';
import { EditorView } from '@codemirror/view';

import { dspexSupport } from './language';
import { DSPEX_CELL } from './magic';
import { specHighlighter } from './tokens';

/** The class on the editor of a `%%dspex` cell. */
export const CELL_CLASS = 'dx-spec-cell';

const DSPEX: Extension = [
  dspexSupport,
  syntaxHighlighting(specHighlighter),
  EditorView.editorAttributes.of({ class: CELL_CLASS })
];

/** How far into a cell the magic is looked for (leading blank lines included). */
const HEAD = 512;

/** Whether the text (a whole cell) starts with the `%%dspex` cell magic. */
export function isDspexCell(text: Text | string): boolean {
  const head = typeof text === 'string' ? text.slice(0, HEAD) : text.sliceString(0, HEAD);
  return DSPEX_CELL.test(head);
}

/** What the editor shows besides its text, as far as this extension cares. */
export interface ICellModel {
  /** The editor's MIME type; markdown cells are never `%%dspex` cells. */
  readonly mimeType: string;
  /** The cell's text when its editor is created. */
  readonly source: string;
}

const NOT_CODE = /markdown|gfm/i;

/** The extension for one editor. */
export function dspexCells(model: ICellModel): Extension {
  const compartment = new Compartment();
  const wanted = (text: Text | string): boolean =>
    !NOT_CODE.test(model.mimeType) && isDspexCell(text);
  const follow = EditorState.transactionExtender.of(tr => {
    if (!tr.docChanged) {
      return null;
    }
    const want = wanted(tr.newDoc);
    if (want === (compartment.get(tr.startState) === DSPEX)) {
      return null;
    }
    return { effects: compartment.reconfigure(want ? DSPEX : []) };
  });
  return [Prec.highest(compartment.of(wanted(model.source) ? DSPEX : [])), follow];
}

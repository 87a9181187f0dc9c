/**
 * dspex-lab's JupyterLab extension: `%%dspex` cells are highlighted as the spec
 * language (SQL for `%%dspex sql`), every other cell keeps its own highlighting.
 *
 * It registers one editor extension with JupyterLab's `IEditorExtensionRegistry`, so it
 * reaches every CodeMirror editor JupyterLab creates (notebook cells, consoles, files)
 * and acts only where the text starts with the magic.
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { EditorExtensionRegistry, IEditorExtensionRegistry } from '@jupyterlab/codemirror';

import { dspexCells } from './cells';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'dspex-lab:spec-cells',
  description: 'Highlights %%dspex cells as the dspex_lab spec language.',
  autoStart: true,
  requires: [IEditorExtensionRegistry],
  activate: (_app: JupyterFrontEnd, registry: IEditorExtensionRegistry): void => {
    registry.addExtension({
      name: 'dspex-lab:spec-cells',
      factory: ({ model }) =>
        EditorExtensionRegistry.createImmutableExtension(
          dspexCells({
            get mimeType() {
              return model.mimeType;
            },
            source: model.sharedModel.getSource()
          })
        )
    });
  }
};

export default plugin;

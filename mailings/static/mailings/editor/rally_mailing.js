// The mailing editor's own menu: a merge field with its fallback, the supporter's personal
// petition link, the call-to-action button and an image by its URL. django-prose-editor loads
// this module when a widget's config names "RallyMailing" (config/settings/base.py), and the
// options come from mailings/content/body_editor.py.
import { Extension, pm, updateAttrsDialog } from "django-prose-editor/editor"

const { Plugin, PluginKey } = pm.state
const { Decoration, DecorationSet } = pm.view

// A fallback is written inside a quoted template argument in the HTML: the template checks
// refuse < > and ", and braces, % or a backslash would end or change the tag.
const NOT_IN_A_FALLBACK = /["<>{}%\\|]/g
const BUTTON_CLASS = "button"
// Merge fields and tags, shown apart from the words around them (in the editor only).
const TEMPLATE_TAG = /\{\{.*?\}\}|\{%.*?%\}/g

const templateTagDecorations = (doc) => {
  const decorations = []
  doc.descendants((node, position) => {
    if (!node.isText) return
    for (const match of node.text.matchAll(TEMPLATE_TAG)) {
      const from = position + match.index
      decorations.push(
        Decoration.inline(from, from + match[0].length, { class: "rally-template-tag" }),
      )
    }
  })
  return DecorationSet.create(doc, decorations)
}

export const mergeFieldSource = (name, fallback) => {
  const safe = (fallback || "").replace(NOT_IN_A_FALLBACK, "").trim()
  return safe ? `{{ ${name}|default:"${safe}" }}` : `{{ ${name} }}`
}

const mergeFieldDialog = (fields) =>
  updateAttrsDialog(
    {
      field: { title: "Merge field", enum: fields.map(({ name }) => name) },
      fallback: {
        type: "string",
        title: "Fallback",
        description: " shown to supporters for whom this field is empty",
      },
    },
    { title: "Insert a merge field", submitText: "Insert" },
  )

const imageDialog = updateAttrsDialog(
  {
    src: { type: "string", title: "Image address (https://…)", required: true },
    alt: {
      type: "string",
      title: "Description",
      description: " read out, or shown, where the image is not",
    },
  },
  { title: "Insert an image", submitText: "Insert" },
)

const insertLinkedWords = (editor, words, attrs) =>
  editor
    .chain()
    .focus()
    .insertContent({ type: "text", text: words, marks: [{ type: "link", attrs }] })
    .run()

export const RallyMailing = Extension.create({
  name: "rallyMailing",

  addOptions() {
    return { petitionUrl: "{{ petition_url }}", mergeFields: [] }
  },

  addProseMirrorPlugins() {
    return [
      new Plugin({
        key: new PluginKey("rallyTemplateTags"),
        state: {
          init: (_config, { doc }) => templateTagDecorations(doc),
          apply: (transaction, decorations) =>
            transaction.docChanged ? templateTagDecorations(transaction.doc) : decorations,
        },
        props: {
          decorations(state) {
            return this.getState(state)
          },
        },
      }),
    ]
  },

  addCommands() {
    return {
      insertMergeField:
        () =>
        ({ editor }) => {
          const fields = this.options.mergeFields
          const fallbacks = Object.fromEntries(fields.map((f) => [f.name, f.fallback]))
          const chosen = mergeFieldDialog(fields)(editor, {
            field: fields[0].name,
            fallback: fields[0].fallback,
          })
          // The dialog is open now: a field's own fallback follows the choice of field.
          const form = editor.view.dom.parentElement.querySelector(
            ".prose-editor-dialog form",
          )
          const field = form.elements.namedItem("field")
          field.addEventListener("change", () => {
            form.elements.namedItem("fallback").value = fallbacks[field.value] || ""
          })
          chosen.then((attrs) => {
            if (attrs) {
              editor
                .chain()
                .focus()
                .insertContent({
                  type: "text",
                  text: mergeFieldSource(attrs.field, attrs.fallback),
                })
                .run()
            }
          })
          return true
        },

      linkToPetition:
        ({ button = false } = {}) =>
        ({ editor }) => {
          const href = this.options.petitionUrl
          // A plain petition link leaves a button a button; the button item makes one.
          const attrs = button ? { href, class: BUTTON_CLASS } : { href }
          if (editor.isActive("link")) {
            return editor
              .chain()
              .focus()
              .extendMarkRange("link")
              .updateAttributes("link", attrs)
              .run()
          }
          if (editor.state.selection.empty) {
            return insertLinkedWords(editor, "Sign the petition", attrs)
          }
          return editor.chain().focus().setLink(attrs).run()
        },

      toggleButton:
        () =>
        ({ editor }) => {
          if (!editor.isActive("link")) {
            return editor.commands.linkToPetition({ button: true })
          }
          const isButton = editor.getAttributes("link").class === BUTTON_CLASS
          return editor
            .chain()
            .focus()
            .extendMarkRange("link")
            .updateAttributes("link", { class: isButton ? null : BUTTON_CLASS })
            .run()
        },

      insertImageByUrl:
        () =>
        ({ editor }) => {
          imageDialog(editor, { src: "", alt: "" }).then((attrs) => {
            if (attrs?.src) {
              editor.chain().focus().setImage({ src: attrs.src.trim(), alt: attrs.alt }).run()
            }
          })
          return true
        },
    }
  },

  addMenuItems({ menu, buttons }) {
    menu.defineItem({
      name: "rallyMergeField",
      groups: "rallyMailing",
      priority: 40,
      command: (editor) => editor.commands.insertMergeField(),
      button: buttons.text("{…} Merge field", "Insert a merge field"),
    })
    menu.defineItem({
      name: "rallyPetitionLink",
      groups: "rallyMailing",
      priority: 30,
      command: (editor) => editor.commands.linkToPetition(),
      button: buttons.text("Petition link", "Link to the supporter's own petition page"),
      active: (editor) =>
        editor.isActive("link", { href: this.options.petitionUrl }) &&
        !editor.isActive("link", { class: BUTTON_CLASS }),
    })
    menu.defineItem({
      name: "rallyButton",
      groups: "rallyMailing",
      priority: 20,
      command: (editor) => editor.commands.toggleButton(),
      button: buttons.text("Button", "Show this link as a button (to the petition if new)"),
      active: (editor) => editor.isActive("link", { class: BUTTON_CLASS }),
    })
    menu.defineItem({
      name: "rallyImage",
      groups: "rallyMailing",
      priority: 10,
      command: (editor) => editor.commands.insertImageByUrl(),
      button: buttons.material("image", "Insert an image by its address"),
    })
  },
})

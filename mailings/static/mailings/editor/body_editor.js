// Each mailing body opens in the rich-text editor, or as HTML: as the server said
// (data-rally-body-mode, from mailings/content/body_editor.py), or when the editor would not
// give back what the body holds. A button switches either way; switching to the editor never
// drops anything without the campaigner's yes. The textarea is what the form saves, in both
// modes.
import { createEditor } from "django-prose-editor/configurable"

const SELECTOR = "textarea[data-rally-body-editor]"
const TO_HTML = "Edit as HTML"
const TO_EDITOR = "Use the editor"
const DROPPED_NOTE =
  "This body opens as HTML, because the editor would drop some of it (styles, tables, " +
  "comments, or text outside a paragraph). Edit it here, or switch to the editor if you can " +
  "do without that."
const SWITCH_QUESTION =
  "The editor cannot keep all of this HTML: it would drop what it cannot show (styles, " +
  "tables, comments, or text outside a paragraph). Switch to the editor anyway?"

// <b> and <i> come back from the editor as <strong> and <em>; the type of an ordered list is
// written by the editor and dropped by the sanitiser.
const SAME_ELEMENT = { b: "strong", i: "em" }
const IGNORED_ATTRIBUTES = { ol: ["type", "data-type"] }
// Elements that hold lines of text; any other element with content is a mark on its text
// (bold, a link, or a <span> the editor would drop), in whatever order they are nested.
const BLOCKS = new Set([
  ..."p h1 h2 h3 h4 h5 h6 ul ol li blockquote div center pre hr figure figcaption".split(" "),
  ..."table thead tbody tfoot tr td th".split(" "),
])
const ATOMS = new Set(["br", "img"])
// The editor wraps the text of a list item or a quote in a paragraph.
const WRAPS_IN_PARAGRAPHS = new Set(["li", "blockquote"])

const describe = (node, name) => {
  const ignored = IGNORED_ATTRIBUTES[name] || []
  const attributes = [...node.attributes]
    .filter(({ name: attribute }) => !ignored.includes(attribute))
    .map(({ name: attribute, value }) => ` ${attribute}="${value}"`)
    .sort()
    .join("")
  return `<${name}${attributes}>`
}

/** Return `html` as a string that two ways of writing the same content share. */
export const canonicalHTML = (html) => {
  const body = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html").body
  const parts = []
  // The text of the current block: runs of [marks, text], and atoms (a line break, an image).
  let line = []
  const endLine = () => {
    const items = line.map(([marks, text]) => [marks, text?.replace(/\s+/g, " ") ?? null])
    // Spaces at either end of a line, or next to a line break, show as nothing.
    for (let i = 0; i < items.length; i++) {
      if (items[i][1] === null) continue
      if (i === 0 || items[i - 1][1] === null) items[i][1] = items[i][1].trimStart()
      if (i === items.length - 1 || items[i + 1][1] === null)
        items[i][1] = items[i][1].trimEnd()
    }
    let previous = null
    for (const [marks, text] of items) {
      if (text === null) {
        parts.push(marks)
        previous = null
      } else if (text) {
        if (previous === marks) parts[parts.length - 1] += text
        else parts.push(`[${marks}]${text}`)
        previous = marks
      }
    }
    line = []
  }
  const walk = (parent, marks) => {
    for (const node of parent.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        line.push([[...marks].sort().join(""), node.data])
      } else if (node.nodeType !== Node.ELEMENT_NODE) {
        endLine()
        parts.push("<!---->") // a comment, which the editor drops
      } else {
        const name = SAME_ELEMENT[node.localName] || node.localName
        const description = describe(node, name)
        if (ATOMS.has(name)) {
          line.push([description, null])
        } else if (!BLOCKS.has(name)) {
          walk(node, [...marks, description])
        } else {
          endLine()
          const wrapper = name === "p" && WRAPS_IN_PARAGRAPHS.has(parent.localName)
          const start = parts.length
          if (!wrapper) parts.push(description)
          walk(node, [])
          endLine()
          // An empty paragraph is the editor's empty body, and shows as nothing.
          if (name === "p" && !wrapper && parts.length === start + 1) parts.pop()
          else if (!wrapper) parts.push(`</${name}>`)
        }
      }
    }
  }
  walk(body, [])
  endLine()
  return parts.join("")
}

const setUp = (textarea) => {
  if (textarea.dataset.rallyBodyReady) return
  textarea.dataset.rallyBodyReady = "yes"
  const config = JSON.parse(textarea.dataset.rallyBodyEditor)
  const toggle = document.createElement("button")
  toggle.type = "button"
  toggle.className = "button rally-body-toggle"
  const note = document.createElement("p")
  note.className = "rally-body-note"
  note.hidden = true
  const bar = document.createElement("div")
  bar.className = "rally-body-mode"
  bar.append(toggle, note)
  // One box for the bar and the body, so the admin's row lays them out as one field.
  const box = document.createElement("div")
  box.className = "rally-body"
  textarea.before(box)
  box.append(bar, textarea)
  let editor = null

  const showHTML = (noteText) => {
    if (editor) {
      editor.destroy()
      editor = null
    }
    textarea.dataset.rallyBodyMode = "html"
    toggle.textContent = TO_EDITOR
    note.textContent = noteText || ""
    note.hidden = !noteText
  }

  const showEditor = async ({ askBeforeDropping }) => {
    toggle.disabled = true
    try {
      await startEditor({ askBeforeDropping })
    } finally {
      toggle.disabled = false
    }
  }

  const startEditor = async ({ askBeforeDropping }) => {
    const before = textarea.dataset.rallyBodyMode
    textarea.dataset.rallyBodyMode = "starting"
    const started = await createEditor(textarea, config)
    if (!started) {
      showHTML(before === "html" ? note.textContent : "")
      return
    }
    if (canonicalHTML(textarea.value) !== canonicalHTML(started.getHTML())) {
      if (!askBeforeDropping || !window.confirm(SWITCH_QUESTION)) {
        started.destroy()
        showHTML(askBeforeDropping ? note.textContent : DROPPED_NOTE)
        return
      }
      // What the editor kept is what the form will save, as the campaigner was told.
      textarea.value = started.getHTML()
    }
    editor = started
    textarea.dataset.rallyBodyMode = "editor"
    toggle.textContent = TO_HTML
    note.hidden = true
  }

  toggle.addEventListener("click", () => {
    if (editor) {
      showHTML("")
      textarea.focus()
    } else {
      showEditor({ askBeforeDropping: true })
    }
  })

  if (textarea.dataset.rallyBodyMode === "html") {
    showHTML(textarea.dataset.rallyBodyNote)
  } else {
    toggle.textContent = TO_HTML
    showEditor({ askBeforeDropping: false })
  }
}

const setUpWithin = (container) => {
  for (const textarea of container.querySelectorAll(SELECTOR)) {
    // The admin's empty form for "Add another" is a template, not a body.
    if (!textarea.id.includes("__prefix__")) setUp(textarea)
  }
}

setUpWithin(document)
document.addEventListener("formset:added", (event) => setUpWithin(event.target))

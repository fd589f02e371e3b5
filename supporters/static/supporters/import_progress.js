// An import's progress page (supporters/templates/supporters/imports/progress.html): polls the
// progress URL each second until the import is finished. A file, not an inline script: pages
// run only scripts from our own origin (the Content-Security-Policy in config/settings/base.py).
(function () {
  const box = document.getElementById("import-progress");
  if (!box) return;
  function show(data) {
    box.querySelector("progress").value = data.percent;
    for (const element of box.querySelectorAll("[data-field]")) {
      const value = data[element.dataset.field];
      element.textContent = value === null || value === undefined ? "…" : value;
    }
    box.querySelector("[data-field=error]").hidden = !data.error;
    box.querySelector("[data-report]").hidden = data.status !== "done";
    return data.finished;
  }
  async function poll() {
    try {
      const response = await fetch(box.dataset.url, {credentials: "same-origin"});
      if (response.ok && show(await response.json())) return;
    } catch (error) { /* the next poll tries again */ }
    setTimeout(poll, 1000);
  }
  if (box.hasAttribute("data-polling")) setTimeout(poll, 1000);
})();

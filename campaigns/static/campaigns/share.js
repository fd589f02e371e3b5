// The thank-you page's "Copy link" button, shown only where the browser can copy. A file, not
// an inline script: the public pages' Content-Security-Policy runs no inline script.
(function () {
  var button = document.getElementById("copy-link"), field = document.getElementById("share-url");
  if (!button || !field || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    navigator.clipboard.writeText(field.value).then(function () {
      document.getElementById("copy-status").textContent = button.dataset.copiedText;
    });
  });
})();

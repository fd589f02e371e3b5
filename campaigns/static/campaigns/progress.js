// Keep each petition's count live while the page is open (count.json is cached for a few
// seconds). A file, not an inline script: the public pages' Content-Security-Policy runs no
// inline script (config/settings/base.py).
(function () {
  if (!window.fetch) return;
  var format = new Intl.NumberFormat(document.documentElement.lang);
  document.querySelectorAll(".progress[data-count-url]").forEach(function (box) {
    setInterval(function () {
      if (document.hidden) return;
      fetch(box.dataset.countUrl).then(function (r) { return r.json(); }).then(function (data) {
        box.querySelector("[data-count]").textContent = format.format(data.count);
        var bar = box.querySelector("[role=progressbar]");
        bar.setAttribute("aria-valuenow", data.count);
        bar.setAttribute("aria-valuemax", data.goal);
        bar.firstElementChild.style.width = Math.min(100, Math.round(100 * data.count / data.goal)) + "%";
      }).catch(function () {});
    }, 20000);
  });
})();

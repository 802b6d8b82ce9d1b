// Trainyard dashboard: progressive enhancement only. Every page reads and every form posts
// without this file; with it you get drag and drop, the upload progress bar and copy buttons.
(function () {
  "use strict";

  function humanSize(n) {
    if (n < 1024) return n + " bytes";
    if (n < 1024 * 1024) return (n / 1024).toFixed(1) + " KB";
    return (n / 1024 / 1024).toFixed(1) + " MB";
  }

  function initDropzones(root) {
    root.querySelectorAll(".dropzone").forEach(function (zone) {
      if (zone.dataset.ready) return;
      zone.dataset.ready = "1";
      var input = zone.querySelector("input[type=file]");
      var chosen = zone.querySelector(".chosen");
      ["dragenter", "dragover"].forEach(function (name) {
        zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("over"); });
      });
      ["dragleave", "drop"].forEach(function (name) {
        zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("over"); });
      });
      zone.addEventListener("drop", function (e) {
        if (e.dataTransfer && e.dataTransfer.files.length) {
          input.files = e.dataTransfer.files;
          input.dispatchEvent(new Event("change", { bubbles: true }));
        }
      });
      input.addEventListener("change", function () {
        var f = input.files && input.files[0];
        if (!f) return;
        if (chosen) chosen.textContent = f.name + " (" + humanSize(f.size) + ")";
        var max = Number(input.dataset.maxBytes || 0);
        if (max && f.size > max) {
          chosen.textContent += ": over the " + humanSize(max) + " limit, choose a smaller file";
          input.setCustomValidity("The file is over the " + humanSize(max) + " limit.");
        } else {
          input.setCustomValidity("");
        }
        // Pick the task from the file type when it is obvious.
        var task = input.form && input.form.querySelector("select[name=task]");
        if (task && /\.zip$/i.test(f.name)) task.value = "image-classification";
        if (task && /\.(csv|tsv|txt)$/i.test(f.name)) task.value = "text-classification";
        var name = input.form && input.form.querySelector("input[name=name]");
        if (name && !name.value) name.placeholder = f.name;
      });
    });
    root.querySelectorAll("[data-js-only]").forEach(function (el) { el.hidden = false; });
  }

  // Upload progress (htmx reports the XHR's upload progress on the form).
  document.addEventListener("htmx:xhr:progress", function (e) {
    var form = e.target.closest ? e.target.closest("form") : null;
    var bar = form && form.querySelector("progress[data-upload]");
    if (!bar || !e.detail.lengthComputable) return;
    var pct = Math.round((e.detail.loaded / e.detail.total) * 100);
    bar.value = pct;
    var label = form.querySelector("[data-upload-label]");
    if (label) label.textContent = pct < 100 ? "Uploading… " + pct + "%" : "Validating…";
  });

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    var area = document.createElement("textarea");
    area.value = text;
    document.body.appendChild(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    return Promise.resolve();
  }

  document.addEventListener("click", function (e) {
    var button = e.target.closest ? e.target.closest("button.copy") : null;
    if (!button) return;
    var source = document.getElementById(button.dataset.copy);
    if (!source) return;
    copyText(source.innerText.trim()).then(function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    });
  });

  document.addEventListener("DOMContentLoaded", function () { initDropzones(document); });
  document.addEventListener("htmx:load", function (e) { initDropzones(e.target); });
})();

// Small enhancements; every page works without them.
(function () {
  "use strict";

  // forms that ask before doing something hard to undo
  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });

  // filters that apply as soon as they change
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // the return form: more damage lines on demand
  document.querySelectorAll("[data-add-damage]").forEach(function (button) {
    var lines = button.parentElement.querySelector("[data-damage-lines]");
    button.hidden = false;
    button.addEventListener("click", function () {
      var rows = lines.querySelectorAll(".damage-line");
      if (rows.length >= 20) return;
      var copy = rows[rows.length - 1].cloneNode(true);
      var n = rows.length;
      var ids = ["dommage-", "dommage-montant-", "dommage-reserve-"];
      var labels = [
        ["Description du dommage ", ""],
        ["Montant ", " (€)"],
        ["Réserve de l'emprunteur sur le dommage ", ""],
      ];
      copy.querySelectorAll("input").forEach(function (input, i) {
        var id = ids[i] + n;
        input.id = id;
        input.value = "";
        input.previousElementSibling.setAttribute("for", id);
        input.previousElementSibling.textContent = labels[i][0] + (n + 1) + labels[i][1];
      });
      lines.appendChild(copy);
      copy.querySelector("input").focus();
    });
  });

  // the booking form: a changed date makes the shown quote stale
  document.querySelectorAll(".booking-form").forEach(function (form) {
    var quote = form.querySelector(".quote");
    var send = form.querySelector('button[value="envoyer"]');
    if (!quote || !send) return;
    form.querySelectorAll("input").forEach(function (input) {
      input.addEventListener("change", function () {
        if (input.name === "objet" || input.name === "engagement") return;
        quote.classList.add("stale");
        send.disabled = true;
        send.title = "Revoyez le devis après avoir changé la demande";
      });
    });
  });
})();

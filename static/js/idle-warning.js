// NHS login sessions end after a spell without use (WF-NFR-18). A minute before, say so and offer to stay signed in;
// at the end, go to the signed-out page. Without this script the session still ends and the next page says so.
(function () {
  var box = document.getElementById("hub-idle-warning");
  if (!box) return;
  var idle = Number(box.dataset.idle) * 1000;
  var warn = Number(box.dataset.warn) * 1000;
  var warnTimer, endTimer;
  function start() {
    clearTimeout(warnTimer);
    clearTimeout(endTimer);
    warnTimer = setTimeout(function () {
      box.hidden = false;
      box.querySelector("button").focus();
    }, warn);
    endTimer = setTimeout(function () {
      window.location.assign("/nhs-login/signed-out");
    }, idle);
  }
  box.querySelector("button").addEventListener("click", function () {
    fetch("/nhs-login/keep-alive", { credentials: "same-origin" }).then(function (response) {
      if (response.status === 204) {
        box.hidden = true;
        start();
      } else {
        window.location.assign("/nhs-login/signed-out");
      }
    });
  });
  start();
})();

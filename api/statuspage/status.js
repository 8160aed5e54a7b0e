// Reload every 5 seconds, except while the page is hidden or someone is typing a filter.
(function () {
  "use strict";
  var q = document.getElementById("q");
  setInterval(function () {
    if (document.hidden || (q && (document.activeElement === q || q.value !== q.defaultValue))) {
      return;
    }
    location.reload();
  }, 5000);
})();

// Keeps the transcript in step with the player: highlights the segment being played,
// seeks to a segment when it is clicked, starts at ?t=SECONDS, and keeps an example
// inside its own span.
(function () {
  const player = document.getElementById("player");
  if (!player) return;
  const segments = Array.from(document.querySelectorAll("#transcript .segment"));
  segments.forEach(function (item) {
    item.addEventListener("click", function () {
      player.currentTime = parseFloat(item.dataset.start);
      player.play();
    });
  });
  player.addEventListener("timeupdate", function () {
    const now = player.currentTime;
    segments.forEach(function (item) {
      const inside = now >= parseFloat(item.dataset.start) && now < parseFloat(item.dataset.end);
      item.classList.toggle("current", inside);
    });
    if (player.dataset.end && now >= parseFloat(player.dataset.end)) player.pause();
  });
  const wanted = new URLSearchParams(location.search).get("t") || player.dataset.start;
  if (wanted) {
    player.addEventListener("loadedmetadata", function () {
      player.currentTime = parseFloat(wanted);
    }, { once: true });
  }
})();

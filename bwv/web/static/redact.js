// The Redact page: words clicked in the transcript go into the words field, and the
// preview shows the player's current frame with the ticked faces hidden.
(function () {
  const field = document.getElementById("mute-words");
  document.querySelectorAll("button.word").forEach((button) => {
    button.addEventListener("click", () => {
      const word = button.textContent.replace(/^[^\w']+|[^\w']+$/g, "");
      const words = field.value.split(",").map((w) => w.trim()).filter((w) => w);
      const at = words.indexOf(word);
      if (at >= 0) { words.splice(at, 1); button.classList.remove("chosen"); }
      else { words.push(word); button.classList.add("chosen"); }
      field.value = words.join(", ");
    });
  });
  const previewButton = document.getElementById("preview-button");
  const player = document.getElementById("player");
  if (previewButton && player) {
    previewButton.addEventListener("click", () => {
      const faces = [...document.querySelectorAll("input.face:checked")].map((box) => box.value);
      const solid = document.getElementById("solid").checked;
      const url = `/clips/${previewButton.dataset.clip}/redact/preview.jpg?t=${player.currentTime.toFixed(3)}` +
        `&faces=${encodeURIComponent(faces.join(","))}&solid=${solid}`;
      const image = document.getElementById("preview");
      image.onload = () => { image.hidden = false; };
      image.src = url;
    });
  }
})();

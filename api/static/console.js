// Every admin page: copy buttons, question boxes that grow with their text and count their
// characters, and the audit filter's To day that cannot come before its From day. Each is an
// addition: without this script the pages work and show the same information.
"use strict";

const status = document.getElementById("console-status");

function say(message) {
  if (status) status.textContent = message;
}

// A copy button copies its `data-copy`, read at the click (a dialog fills it in later).
for (const button of document.querySelectorAll("button.copy")) {
  button.hidden = false;
  const label = button.textContent;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(button.dataset.copy);
    } catch (error) {
      say("Copying is not allowed here: select the text and press Ctrl+C (or ⌘C).");
      return;
    }
    // A button with a word says "Copied"; an icon turns green (and the status says it).
    if (label.trim()) button.textContent = "Copied";
    button.dataset.copied = "";
    say("Copied to the clipboard.");
    setTimeout(() => {
      if (label.trim()) button.textContent = label;
      delete button.dataset.copied;
    }, 1500);
  });
}

const grows = !CSS.supports("field-sizing", "content");
for (const box of document.querySelectorAll("textarea[data-counter]")) {
  const counter = document.getElementById(box.dataset.counter);
  const limit = Number(box.getAttribute("maxlength"));
  const update = () => {
    const count = box.value.length;
    counter.textContent = `${count.toLocaleString("en-GB")} / ${limit.toLocaleString("en-GB")} characters`;
    counter.classList.toggle("over", count >= limit);
    if (grows) {
      box.style.height = "auto";
      box.style.height = `${box.scrollHeight + 2}px`;
    }
  };
  box.addEventListener("input", update);
  update();
}

const from = document.getElementById("filter-from");
const to = document.getElementById("filter-to");
if (from && to) {
  from.addEventListener("change", () => {
    to.min = from.value;
  });
}

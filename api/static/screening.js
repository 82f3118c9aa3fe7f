// A screening's page: "Send to Ashby again" posts to the JSON API with the session cookie and
// the page's CSRF token, says how it went, and reloads the page so the timeline shows it.
"use strict";

const redeliverForm = document.getElementById("redeliver-form");
const redeliverStatus = document.getElementById("redeliver-status");

redeliverForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = document.getElementById("redeliver-button");
  button.disabled = true;
  redeliverStatus.hidden = false;
  redeliverStatus.textContent = "Sending to Ashby…";
  const screening = redeliverForm.dataset.screening;
  let payload = {};
  let response;
  try {
    response = await fetch(`/api/screenings/${screening}/redeliver`, {
      method: "POST",
      headers: { "X-CSRF-Token": redeliverForm.dataset.csrfToken },
      credentials: "same-origin",
    });
    payload = await response.json();
  } catch (error) {
    payload = { message: "Truffle could not be reached. Try again." };
  }
  if (response && response.ok) {
    window.location.assign(`/screenings/${screening}?notice=${payload.outcome}`);
    return;
  }
  redeliverStatus.textContent =
    payload.message || `Something went wrong (HTTP ${response ? response.status : "none"}).`;
  button.disabled = false;
});

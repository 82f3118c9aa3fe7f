// The Ashby card: the Connect / Reconnect window, the one-time key display, Disconnect and the
// webhooks' one-time secret.
// Every call goes to the JSON API with the session cookie and the page's CSRF token.
"use strict";

const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const connectDialog = document.getElementById("connect-dialog");
const disconnectDialog = document.getElementById("disconnect-dialog");
let mode = "connect";

async function callApi(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  let payload = {};
  try {
    payload = await response.json();
  } catch (error) {
    payload = { message: "Truffle answered with something unexpected. Try again." };
  }
  if (!response.ok) {
    throw new Error(payload.message || `Something went wrong (HTTP ${response.status}).`);
  }
  return payload;
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = false;
}

function openConnect(nextMode) {
  mode = nextMode;
  document.getElementById("connect-title").textContent =
    mode === "reconnect" ? "Reconnect Ashby" : "Connect Ashby";
  document.getElementById("connect-submit").textContent =
    mode === "reconnect" ? "Reconnect" : "Connect";
  document.getElementById("reconnect-warning").hidden = mode !== "reconnect";
  document.getElementById("connect-error").hidden = true;
  document.getElementById("connect-form-view").hidden = false;
  document.getElementById("connected-view").hidden = true;
  document.getElementById("ashby-api-key").value = "";
  connectDialog.showModal();
  document.getElementById("ashby-api-key").focus();
}

document.getElementById("connect-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const submit = document.getElementById("connect-submit");
  const key = document.getElementById("ashby-api-key").value.trim();
  submit.disabled = true;
  try {
    const reply = await callApi(`/api/integrations/ashby/${mode}`, { ashby_api_key: key });
    document.getElementById("ashby-api-key").value = "";
    document.getElementById("truffle-key").value = reply.truffle_key;
    document.getElementById("partner-base-url").textContent = reply.card.partner_base_url;
    document.getElementById("connect-form-view").hidden = true;
    document.getElementById("connected-view").hidden = false;
    document.getElementById("connected-title").focus();
  } catch (error) {
    showError(document.getElementById("connect-error"), error.message);
  } finally {
    submit.disabled = false;
  }
});

document.getElementById("copy-key").addEventListener("click", async () => {
  const field = document.getElementById("truffle-key");
  const status = document.getElementById("copy-status");
  try {
    await navigator.clipboard.writeText(field.value);
    status.textContent = "Copied to the clipboard.";
  } catch (error) {
    field.select();
    status.textContent = "Press Ctrl+C (or ⌘C) to copy the selected key.";
  }
});

function finish() {
  // Reloading shows the new card and drops the key from the page for good.
  document.getElementById("truffle-key").value = "";
  window.location.reload();
}

document.getElementById("connected-done").addEventListener("click", finish);
connectDialog.addEventListener("cancel", (event) => {
  if (!document.getElementById("connected-view").hidden) {
    event.preventDefault();
    finish();
  }
});

for (const button of document.querySelectorAll("[data-close]")) {
  button.addEventListener("click", () => button.closest("dialog").close());
}

const openConnectButton = document.getElementById("open-connect");
if (openConnectButton) openConnectButton.addEventListener("click", () => openConnect("connect"));
const openReconnectButton = document.getElementById("open-reconnect");
if (openReconnectButton) openReconnectButton.addEventListener("click", () => openConnect("reconnect"));
const openDisconnectButton = document.getElementById("open-disconnect");
if (openDisconnectButton) {
  openDisconnectButton.addEventListener("click", () => {
    document.getElementById("disconnect-error").hidden = true;
    disconnectDialog.showModal();
  });
}

document.getElementById("confirm-disconnect").addEventListener("click", async () => {
  try {
    await callApi("/api/integrations/ashby/disconnect");
    window.location.reload();
  } catch (error) {
    showError(document.getElementById("disconnect-error"), error.message);
  }
});

const webhooksDialog = document.getElementById("webhooks-dialog");
const openWebhooksButton = document.getElementById("open-webhooks");
if (openWebhooksButton) {
  openWebhooksButton.addEventListener("click", async () => {
    const error = document.getElementById("webhooks-error");
    error.hidden = true;
    openWebhooksButton.disabled = true;
    try {
      const reply = await callApi("/api/integrations/ashby/webhooks");
      document.getElementById("webhooks-url").textContent = reply.url;
      document.getElementById("copy-webhooks-url").dataset.copy = reply.url;
      document.getElementById("webhooks-secret").value = reply.secret;
      const registered = document.getElementById("webhooks-registered");
      registered.hidden = reply.registered.length === 0;
      registered.textContent = `Truffle registered these webhooks in Ashby: ${reply.registered.join(", ")}.`;
      document.getElementById("webhooks-manual").hidden = reply.problem === null;
      // Webhooks Ashby saved disabled are fixed by reaching the URL: the problem says how.
      let problem = "";
      if (reply.disabled.length > 0) {
        problem = reply.problem;
      } else if (reply.problem !== null) {
        problem = `Add them in Ashby yourself: ${reply.problem}.`;
      }
      document.getElementById("webhooks-problem").textContent = problem;
      const steps = document.getElementById("webhooks-steps");
      steps.replaceChildren(...reply.steps.map((step) => {
        const item = document.createElement("li");
        item.textContent = step;
        return item;
      }));
      webhooksDialog.showModal();
      document.getElementById("webhooks-dialog-title").focus();
    } catch (failure) {
      showError(error, failure.message);
    } finally {
      openWebhooksButton.disabled = false;
    }
  });
  document.getElementById("copy-secret").addEventListener("click", async () => {
    const field = document.getElementById("webhooks-secret");
    const status = document.getElementById("copy-secret-status");
    try {
      await navigator.clipboard.writeText(field.value);
      status.textContent = "Copied to the clipboard.";
    } catch (failure) {
      field.select();
      status.textContent = "Press Ctrl+C (or ⌘C) to copy the selected secret.";
    }
  });
  const finishWebhooks = () => {
    document.getElementById("webhooks-secret").value = "";
    window.location.reload();
  };
  document.getElementById("webhooks-done").addEventListener("click", finishWebhooks);
  webhooksDialog.addEventListener("cancel", (event) => {
    event.preventDefault();
    finishWebhooks();
  });
}

// The position form's live preview: as the admin types, the questions, criteria and sample
// answers go to POST /api/positions/preview (debounced); the score appears in the preview panel
// (beside the form, or at the bottom of a narrow screen, so it stays in view) and each
// question's score under its sample answer. Without this script the "Preview score" button does
// the same on the server. Nothing here is stored.
const form = document.getElementById("position-form");
const result = document.getElementById("preview-result");
const csrfToken = document.querySelector('meta[name="csrf-token"]').content;
const DEBOUNCE_MS = 400;
let timer = null;
let sent = 0;

function valueOf(name) {
  const field = form.elements.namedItem(name);
  return field ? field.value : "";
}

function currentForm() {
  const questions = [];
  const answers = [];
  for (const question of form.querySelectorAll("fieldset.question")) {
    const q = question.dataset.index;
    const criteria = [];
    for (const criterion of question.querySelectorAll("fieldset.criterion")) {
      const prefix = `q-${q}-c-${criterion.dataset.index}`;
      const weight = valueOf(`${prefix}-weight`).trim();
      criteria.push({
        label: valueOf(`${prefix}-label`),
        keywords: valueOf(`${prefix}-keywords`).split(",").map((k) => k.trim()).filter(Boolean),
        ...(weight ? { weight } : {}),
      });
    }
    questions.push({ prompt: valueOf(`q-${q}-prompt`), criteria });
    answers.push(valueOf(`q-${q}-sample`));
  }
  return { questions, answers };
}

function paragraph(text, className) {
  const p = document.createElement("p");
  p.textContent = text;
  if (className) p.className = className;
  return p;
}

function describe(scored) {
  const parts = [`Question ${scored.question_index + 1}: `];
  if (scored.score === null) {
    parts.push("not scored (no criteria)");
  } else {
    parts.push(`${scored.score}/100`);
    if (scored.met.length) parts.push(` · met ${scored.met.join(", ")}`);
    if (scored.missed.length) parts.push(` · missed ${scored.missed.join(", ")}`);
  }
  return parts.join("");
}

function show(score) {
  const headline = paragraph("");
  headline.id = "preview-score";
  const strong = document.createElement("strong");
  strong.textContent = `${score.match_score}/100 · ${score.tier}`;
  headline.append(strong);
  const list = document.createElement("ul");
  list.id = "preview-questions";
  for (const scored of score.questions) {
    const item = document.createElement("li");
    item.textContent = describe(scored);
    list.append(item);
  }
  const summary = paragraph(score.summary, "muted");
  summary.id = "preview-summary";
  result.replaceChildren(headline, list, summary);
  for (const line of form.querySelectorAll(".sample-score")) line.textContent = "";
  for (const scored of score.questions) {
    const line = document.getElementById(`q-${scored.question_index}-sample-score`);
    const answered = valueOf(`q-${scored.question_index}-sample`).trim() !== "";
    if (line && answered) line.textContent = `This answer: ${describe(scored).replace(/^Question \d+: /, "")}`;
  }
}

async function preview() {
  const mine = ++sent;
  let response;
  try {
    response = await fetch("/api/positions/preview", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
      body: JSON.stringify(currentForm()),
    });
  } catch {
    if (mine === sent) result.replaceChildren(paragraph("The preview is not available right now.", "muted"));
    return;
  }
  if (mine !== sent) return; // a newer preview is on its way
  if (response.ok) {
    show(await response.json());
  } else if (response.status === 422) {
    result.replaceChildren(
      paragraph("Fill in each question and its criteria (label and keywords) to see the score.", "muted"),
    );
  } else {
    result.replaceChildren(paragraph("The preview is not available right now.", "muted"));
  }
}

// The invite the settings would send, rendered by the server (POST /api/positions/invite-preview)
// as the admin types: its subject, opening and deadline, or in words why the settings cannot be
// kept. The page shows the same from the server when it loads.
const invite = document.getElementById("invite-preview");
let inviteSent = 0;

function hours(name, key) {
  return valueOf(name).split(",").map((part) => part.trim()).filter(Boolean).map((part) => ({
    [key]: /^\d+$/.test(part) ? Number(part) : part,
  }));
}

function inviteSettings() {
  const expiry = valueOf("expiry_days").trim();
  return {
    name: valueOf("name"),
    expiry_days: /^\d+$/.test(expiry) ? Number(expiry) : expiry,
    reminders: [
      ...hours("after_invite", "after_invite_hours"),
      ...hours("before_deadline", "before_deadline_hours"),
    ],
    language: valueOf("language"),
    invite_subject: valueOf("invite_subject"),
    invite_intro: valueOf("invite_intro"),
  };
}

async function previewInvite() {
  const mine = ++inviteSent;
  let response;
  try {
    response = await fetch("/api/positions/invite-preview", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken },
      body: JSON.stringify(inviteSettings()),
    });
  } catch {
    return;
  }
  if (mine !== inviteSent) return;
  if (response.ok) {
    const shown = await response.json();
    const subject = paragraph("");
    const label = document.createElement("strong");
    label.textContent = "Subject: ";
    const text = document.createElement("span");
    text.id = "invite-preview-subject";
    text.textContent = shown.subject;
    subject.append(label, text);
    const opening = paragraph(shown.opening, "preserve-lines");
    opening.id = "invite-preview-opening";
    const deadline = paragraph(`The link works until ${shown.deadline} (sent now, to a candidate named Ada).`, "muted");
    invite.lang = shown.language;
    invite.replaceChildren(subject, opening, deadline);
  } else {
    const body = await response.json().catch(() => ({}));
    const problem = paragraph(body.message || "These settings cannot be kept.", "error");
    problem.id = "invite-preview-problem";
    invite.replaceChildren(problem);
  }
}

// The score follows the typing: the server's button is for pages without this script.
document.getElementById("preview-button").hidden = true;

form.addEventListener("input", () => {
  clearTimeout(timer);
  timer = setTimeout(() => {
    preview();
    previewInvite();
  }, DEBOUNCE_MS);
});

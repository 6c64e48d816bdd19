// Sign-in: asks for a token, tries it with a WebSocket connect, and keeps
// it in this tab's sessionStorage once the gateway accepted it.

import { h, uid } from "../dom";

export function signInView(message: string, signIn: (token: string) => Promise<string | null>): HTMLElement {
  const inputId = uid("token");
  const errId = uid("err");
  const input = h("input", {
    id: inputId,
    name: "token",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    placeholder: "smithers_…",
    "aria-describedby": errId,
  });
  const err = h("p", { id: errId, class: "form-error", role: "alert" }, message);
  err.hidden = !message;
  const submit = h("button", { type: "submit", class: "btn btn-primary" }, "Sign in");
  const form = h(
    "form",
    { class: "signin-form", novalidate: true },
    h("label", { for: inputId }, "Token"),
    input,
    err,
    submit,
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = input.value.trim();
    if (!token) {
      err.textContent = "Paste a token to sign in.";
      err.hidden = false;
      input.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Signing in…";
    const failure = await signIn(token);
    if (failure !== null) {
      submit.disabled = false;
      submit.textContent = "Sign in";
      err.textContent = failure;
      err.hidden = false;
      input.select();
    }
  });
  window.setTimeout(() => input.focus(), 0);
  return h(
    "main",
    { class: "signin", id: "main" },
    h(
      "section",
      { class: "signin-card", "aria-labelledby": "signin-title" },
      h("div", { class: "brand brand-big" }, h("span", { class: "logo", "aria-hidden": "true" }, "S"), h("span", null, "Smithers")),
      h("h1", { id: "signin-title" }, "Sign in to the operator console"),
      form,
      h(
        "div",
        { class: "help" },
        h("p", null, "Use a gateway token: the one ", h("code", null, "smithers dev"), " printed, or a new one:"),
        h("pre", null, "smithers token issue --scopes run:read,run:write,approval:submit,signal:submit,cron:write --ttl 8h"),
        h(
          "p",
          { class: "muted" },
          "The token stays in this browser tab only (session storage) and is sent to this gateway alone, as a bearer header and in the live connection. What you may do follows its scopes.",
        ),
      ),
    ),
  );
}

// Approval in the page (docs/mcp.md): the assistant asks to use an MCP tool the operator marked as needing
// approval, and the person talking answers Allow or Deny. Keyboard first: the request takes focus on
// Allow (Enter or Space allows), Escape denies, Tab moves between the two. A request stays until the
// server settles it (approval.done: answered, timed out, interrupted by speech, or ended), whatever
// settled it; the page never decides on its own.
import { ClientType } from "./contract.js";
import { seconds as inSeconds, t } from "./words.js";

const STYLE = new URL("../css/approval.css", import.meta.url).href;

export class Approvals {
  // `send(message)` sends on the current socket and says whether it could.
  constructor(send) {
    this.send = send;
    this.open = new Map(); // request id → { root, timer, returnFocus }
    if (!document.querySelector(`link[href="${STYLE}"]`)) {
      const link = document.head.appendChild(document.createElement("link"));
      link.rel = "stylesheet";
      link.href = STYLE;
    }
  }

  request({ id, server, tool, summary, seconds, arguments: args }) {
    if (this.open.has(id)) return; // shown again after a resume: it is already here
    const root = document.createElement("section");
    root.className = "approval";
    root.dataset.id = id;
    root.setAttribute("role", "alertdialog");
    root.setAttribute("aria-labelledby", `approval-title-${id}`);
    root.setAttribute("aria-describedby", `approval-text-${id}`);
    const title = root.appendChild(document.createElement("h2"));
    title.id = `approval-title-${id}`;
    title.textContent = t("approval.title");
    const text = root.appendChild(document.createElement("p"));
    text.id = `approval-text-${id}`;
    // The page's own sentence from the tool and server named (the server's summary is English); the
    // summary only when they are missing.
    text.textContent = tool && server ? t("approval.summary", { tool, server }) : summary ?? "";
    if (typeof args === "string" && args) {
      const pre = root.appendChild(document.createElement("pre"));
      pre.className = "approval-arguments";
      pre.textContent = args;
    }
    const time = root.appendChild(document.createElement("p"));
    time.className = "approval-time";
    const buttons = root.appendChild(document.createElement("div"));
    buttons.className = "approval-buttons";
    const allow = buttons.appendChild(document.createElement("button"));
    allow.type = "button";
    allow.className = "primary";
    allow.textContent = t("approval.allow");
    const deny = buttons.appendChild(document.createElement("button"));
    deny.type = "button";
    deny.className = "secondary";
    deny.textContent = t("approval.deny");
    const answer = (approve) => {
      if (this.send({ type: ClientType.APPROVAL, id, approve })) {
        allow.disabled = deny.disabled = true;
        root.dataset.answered = approve ? "allow" : "deny";
      }
    };
    allow.addEventListener("click", () => answer(true));
    deny.addEventListener("click", () => answer(false));
    root.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        answer(false);
      }
    });
    let left = Math.max(0, Math.round(seconds ?? 0));
    const tick = () => {
      time.textContent = left > 0 ? t("approval.time_left", { seconds: inSeconds(left) }) : t("approval.waiting");
      left -= 1;
    };
    tick();
    const timer = setInterval(tick, 1000);
    const host = document.querySelector(".stage") ?? document.body;
    host.insertBefore(root, host.querySelector("#notice"));
    this.open.set(id, { root, timer, returnFocus: document.activeElement });
    allow.focus();
  }

  settled({ id }) {
    const entry = this.open.get(id);
    if (!entry) return;
    this.open.delete(id);
    clearInterval(entry.timer);
    const hadFocus = entry.root.contains(document.activeElement);
    entry.root.remove();
    if (hadFocus) {
      const next = [...this.open.values()].at(-1);
      (next?.root.querySelector("button:not(:disabled)") ?? entry.returnFocus)?.focus?.();
    }
  }

  // The session is over (stopped, or the socket is gone for good): nothing here can be answered.
  clear() {
    for (const id of [...this.open.keys()]) this.settled({ id });
  }
}

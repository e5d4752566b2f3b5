// The web chat client of trueconf-sim: act as any emulated user and talk to the bot.
// Plain browser JavaScript, no build step. The emulator's state comes from /sim/api/state,
// refetched whenever /sim/api/events says something changed; actions go to /sim/api/act.
// Text from users and the bot is never put into innerHTML: every node is built here.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  me: localStorage.getItem("trueconf-sim.user") || "alice",
  chat: null,
  replyTo: null,
  state: null,
  frames: [],
  refetching: false,
  again: false,
};

const SYSTEM_NOTICES = {
  1: "added a participant", 2: "removed a participant", 21: "changed the title",
  22: "changed the avatar", 23: "cleared the history", 110: "changed a role",
};

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(showError.timer);
  showError.timer = setTimeout(() => { box.hidden = true; }, 5000);
}

async function api(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function act(op, fields) {
  return api("/sim/api/act", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ op, as: ui.me, ...fields }),
  });
}

// ---- rendering of message text -----------------------------------------------------------

const SAFE_URL = /^(https?:|mailto:|trueconf:)/i;
const HTML_TAGS = new Set(["B", "STRONG", "I", "EM", "U", "INS", "S", "STRIKE", "DEL", "CODE",
  "PRE", "A", "BR", "BLOCKQUOTE", "SPAN", "P"]);

// Copies only known-harmless tags (and a link's safe href) from parsed HTML.
function sanitize(node) {
  const out = document.createDocumentFragment();
  for (const child of node.childNodes) {
    if (child.nodeType === Node.TEXT_NODE) {
      out.append(child.textContent);
    } else if (child.nodeType === Node.ELEMENT_NODE) {
      if (!HTML_TAGS.has(child.tagName)) { out.append(sanitize(child)); continue; }
      const copy = document.createElement(child.tagName.toLowerCase());
      if (child.tagName === "A") {
        const href = child.getAttribute("href") || "";
        if (SAFE_URL.test(href)) { copy.href = href; copy.target = "_blank"; copy.rel = "noopener"; }
      }
      copy.append(sanitize(child));
      out.append(copy);
    }
  }
  return out;
}

function renderHtml(text) {
  const doc = new DOMParser().parseFromString(`<body>${text}</body>`, "text/html");
  return sanitize(doc.body);
}

const MARKDOWN = /```([\s\S]*?)```|`([^`\n]+)`|\*\*([\s\S]+?)\*\*|__([\s\S]+?)__|~~([\s\S]+?)~~|\*([^*\n]+)\*|_([^_\n]+)_|\[([^\]\n]+)\]\(([^)\s]+)\)/g;

function renderMarkdown(text) {
  const out = document.createDocumentFragment();
  let last = 0;
  for (const m of text.matchAll(MARKDOWN)) {
    out.append(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[1] !== undefined) out.append(el("pre", {}, m[1].replace(/^\n/, "")));
    else if (m[2] !== undefined) out.append(el("code", {}, m[2]));
    else if (m[3] !== undefined) out.append(el("b", {}, renderMarkdown(m[3])));
    else if (m[4] !== undefined) out.append(el("u", {}, renderMarkdown(m[4])));
    else if (m[5] !== undefined) out.append(el("s", {}, renderMarkdown(m[5])));
    else if (m[6] !== undefined || m[7] !== undefined) {
      out.append(el("i", {}, renderMarkdown(m[6] ?? m[7])));
    } else if (SAFE_URL.test(m[9])) {
      out.append(el("a", { href: m[9], target: "_blank", rel: "noopener" }, m[8]));
    } else out.append(m[0]);
  }
  out.append(text.slice(last));
  return out;
}

function renderText(content) {
  const text = content.text || "";
  switch (content.parseMode) {
    case "html": return renderHtml(text);
    case "markdown": return renderMarkdown(text);
    default: return document.createTextNode(text);
  }
}

// ---- messages ----------------------------------------------------------------------------

function login(id) { return (id || "").split("@")[0]; }

function keyboard(message) {
  const rows = (message.content && message.content.buttons) || [];
  if (!rows.length) return null;
  return el("div", { class: "keyboard" }, rows.map((row) => el("div", { class: "row" },
    row.map((button) => {
      const label = button.label || button.url || "";
      if (button.type === "url" || (!button.type && button.url)) {
        return SAFE_URL.test(button.url || "")
          ? el("a", { href: button.url, target: "_blank", rel: "noopener" }, label)
          : el("span", {}, label);
      }
      const onclick = () => press(message, button).catch((e) => showError(e.message));
      return el("button", { type: "button", class: "kbd", "data-command": button.command,
        onclick }, label);
    }))));
}

async function press(message, button) {
  switch (button.type) {
    case "message":
      if (button.draft) { $("composer-text").value = button.message; return; }
      await act("send", { chat: ui.chat, text: button.message, parseMode: "text" });
      return;
    case "copy":
      await navigator.clipboard.writeText(button.data || "");
      return;
    default:
      await act("press", { chat: ui.chat, message: message.messageId, command: button.command });
  }
}

function body(message) {
  const content = message.content || {};
  switch (message.type) {
    case 202: {
      const url = `/sim/api/file/${encodeURIComponent(content.fileId)}`;
      const ready = content.readyState === 2;
      return el("div", { class: "file" },
        "📄 ", ready ? el("a", { href: url, download: content.name }, content.name)
          : `${content.name} (uploading…)`,
        el("span", { class: "meta" }, `${content.size} bytes`),
        ready && /^image\//.test(content.mimeType || "") ? el("img", { src: url, alt: content.name }) : null);
    }
    case 204: {
      const link = `${content.url}?id=${encodeURIComponent(content.path || "")}`;
      return el("div", { class: "survey" },
        el("div", { class: "title" }, "📊 ", content.title),
        el("div", { class: "muted" }, content.description),
        SAFE_URL.test(link) ? el("a", { href: link, target: "_blank", rel: "noopener" },
          (content.buttonText || "").replace(/^\{\{|\}\}$/g, "") || "Go to survey") : null);
    }
    default:
      return el("div", { class: "text" }, renderText(content));
  }
}

function messageNode(message, chat) {
  if (message.type < 200) {
    const who = login(message.author && message.author.id) || "server";
    return el("div", { class: "msg system", "data-id": message.messageId },
      `${who} ${SYSTEM_NOTICES[message.type] || `(notice ${message.type})`}`);
  }
  const author = login(message.author.id);
  const mine = author === ui.me;
  const isBot = author === ui.state.bot;
  const byId = new Map(chat.messages.map((m) => [m.messageId, m]));
  const replied = message.replyMessageId && byId.get(message.replyMessageId);
  const actions = mine ? el("span", { class: "actions" },
    message.type === 200 ? el("button", { type: "button", onclick: () => editMessage(message) }, "edit") : null,
    el("button", { type: "button", onclick: () => act("remove", { message: message.messageId })
      .catch((e) => showError(e.message)) }, "remove")) : el("span", { class: "actions" },
    el("button", { type: "button", onclick: () => startReply(message) }, "reply"));
  const time = new Date(message.timestamp).toLocaleTimeString();
  return el("div", { class: `msg${mine ? " mine" : ""}${isBot ? " bot" : ""}`,
    "data-id": message.messageId, "data-author": author },
  el("div", {}, el("span", { class: "author" }, author),
    el("span", { class: "meta" }, time, message.isEdited ? " · edited" : ""), " ", actions),
  replied ? el("div", { class: "quote" }, login(replied.author.id), ": ",
    (replied.content && (replied.content.text || replied.content.name || replied.content.title)) || "") : null,
  body(message), keyboard(message));
}

function editMessage(message) {
  const text = prompt("Edit message", message.content.text || "");
  if (text === null) return;
  act("edit", { message: message.messageId, text }).catch((e) => showError(e.message));
}

function startReply(message) {
  ui.replyTo = message.messageId;
  const box = $("replying");
  box.replaceChildren("replying to ", login(message.author.id), " ",
    el("button", { type: "button", onclick: () => { ui.replyTo = null; box.hidden = true; } }, "cancel"));
  box.hidden = false;
  $("composer-text").focus();
}

// ---- the page ----------------------------------------------------------------------------

function visibleChats() {
  return ui.state.chats.filter((c) => c.participants.some((p) => p.login === ui.me));
}

function chatName(chat) {
  if (chat.type === 1) {
    const other = chat.participants.find((p) => p.login !== ui.me);
    return other ? other.login : chat.title || "personal chat";
  }
  return chat.title || chat.id.slice(0, 8);
}

const KINDS = { 1: "personal", 2: "group", 5: "favorites", 6: "channel" };

function render() {
  const state = ui.state;
  if (!state) return;
  const select = $("as-user");
  const users = state.users.filter((u) => !u.bot).map((u) => u.login);
  if (!users.includes(ui.me)) users.push(ui.me);
  select.replaceChildren(...users.map((u) => el("option", { value: u, selected: u === ui.me }, u)));
  const chats = visibleChats();
  if (ui.chat && !chats.some((c) => c.id === ui.chat)) ui.chat = null;
  $("chats").replaceChildren(...chats.map((c) => el("li", {
    class: c.id === ui.chat ? "active" : "", "data-chat": c.id,
    onclick: () => { ui.chat = c.id; ui.replyTo = null; $("replying").hidden = true; render(); },
  }, chatName(c), el("span", { class: "kind" }, KINDS[c.type] || c.type))));
  const chat = chats.find((c) => c.id === ui.chat);
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  if (!chat) {
    $("chat-title").textContent = "no chat open";
    $("chat-members").textContent = "";
    list.replaceChildren(el("p", { class: "muted" },
      "Pick a chat, or press “Chat with the bot”."));
    $("typing").hidden = true;
    renderFrames();
    return;
  }
  $("chat-title").textContent = chatName(chat);
  $("chat-members").textContent = " · " + chat.participants.map((p) =>
    p.role === "user" ? p.login : `${p.login} (${p.role})`).join(", ");
  list.replaceChildren(...chat.messages.map((m) => messageNode(m, chat)));
  if (atBottom) list.scrollTop = list.scrollHeight;
  const typing = chat.typing;
  const fresh = typing && typing.login !== ui.me && state.now - typing.at < 5500;
  $("typing").hidden = !fresh;
  if (fresh) {
    $("typing").textContent = `${typing.login} is ${typing.kind.replace("_", " ")}…`;
    clearTimeout(render.typingTimer);
    render.typingTimer = setTimeout(refetch, 5600 - (state.now - typing.at));
  }
  renderFrames();
}

async function refetch() {
  if (ui.refetching) { ui.again = true; return; }
  ui.refetching = true;
  try {
    do {
      ui.again = false;
      ui.state = await api("/sim/api/state");
      render();
    } while (ui.again);
  } catch (e) {
    showError(`cannot read the emulator's state: ${e.message}`);
  } finally {
    ui.refetching = false;
  }
}

// ---- the frame inspector -----------------------------------------------------------------

function renderFrames() {
  const panel = $("inspector");
  if (panel.hidden) return;
  const method = $("filter-method").value.trim().toLowerCase();
  const onlyChat = $("filter-chat").checked;
  const shown = ui.frames.filter((f) =>
    (!method || (f.method || "").toLowerCase().includes(method)) &&
    (!onlyChat || f.chat === ui.chat)).slice(-500);
  const list = $("frames");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.replaceChildren(...shown.map((f) => {
    const item = el("li", { "data-seq": f.seq, "data-method": f.method || "" },
      el("span", { class: `dir-${f.dir}` }, f.dir === "in" ? "bot → sim " : "sim → bot "),
      `${(f.at_ms / 1000).toFixed(3)}s `, el("b", {}, f.method || "?"),
      f.chat ? ` · ${f.chat.slice(0, 8)}` : "", ` · conn ${f.conn}`);
    item.addEventListener("click", (event) => {
      if (event.target.tagName === "PRE") return;
      const open = item.querySelector("pre");
      if (open) open.remove(); else item.append(el("pre", {}, JSON.stringify(f.frame, null, 2)));
    });
    return item;
  }));
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function listen() {
  const events = new EventSource("/sim/api/events");
  let pending = null;
  const soon = () => { if (!pending) pending = setTimeout(() => { pending = null; refetch(); }, 30); };
  events.addEventListener("open", () => { $("status").textContent = "live"; });
  events.addEventListener("error", () => { $("status").textContent = "reconnecting…"; });
  events.addEventListener("change", soon);
  events.addEventListener("frame", (event) => {
    ui.frames.push(JSON.parse(event.data));
    if (ui.frames.length > 5000) ui.frames.splice(0, 1000);
    soon();
  });
}

function setup() {
  $("as-user").addEventListener("change", (event) => {
    ui.me = event.target.value;
    localStorage.setItem("trueconf-sim.user", ui.me);
    ui.chat = null;
    render();
  });
  $("add-user-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = $("add-user").value.trim();
    if (!name) return;
    try {
      const prev = ui.me;
      ui.me = name;
      await act("user", {}).catch((e) => { ui.me = prev; throw e; });
      localStorage.setItem("trueconf-sim.user", ui.me);
      $("add-user").value = "";
      ui.chat = null;
      await refetch();
    } catch (e) { showError(e.message); }
  });
  $("start-bot").addEventListener("click", async () => {
    try {
      ui.chat = (await act("p2p", {})).chatId;
      await refetch();
      $("composer-text").focus();
    } catch (e) { showError(e.message); }
  });
  $("new-chat-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const members = $("new-chat-members").value.split(/[\s,]+/).filter(Boolean);
    try {
      ui.chat = (await act($("new-chat-kind").value,
        { title: $("new-chat-title").value, members })).chatId;
      $("new-chat").open = false;
      await refetch();
    } catch (e) { showError(e.message); }
  });
  $("composer").addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = $("composer-text").value;
    if (!text.trim() || !ui.chat) return;
    try {
      await act("send", { chat: ui.chat, text, parseMode: $("parse-mode").value,
        replyTo: ui.replyTo || undefined });
      $("composer-text").value = "";
      ui.replyTo = null;
      $("replying").hidden = true;
      await refetch();
    } catch (e) { showError(e.message); }
  });
  $("composer-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("file-input").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    event.target.value = "";
    if (!file || !ui.chat) return;
    const query = new URLSearchParams({ as: ui.me, chat: ui.chat, name: file.name });
    try {
      await api(`/sim/api/upload?${query}`, { method: "POST", body: file });
      await refetch();
    } catch (e) { showError(e.message); }
  });
  $("toggle-inspector").addEventListener("click", () => {
    $("inspector").hidden = !$("inspector").hidden;
    renderFrames();
  });
  $("filter-method").addEventListener("input", renderFrames);
  $("filter-chat").addEventListener("change", renderFrames);
  $("clear-frames").addEventListener("click", () => { ui.frames = []; renderFrames(); });
  listen();
  refetch();
}

setup();

/*
 * 관세 FAQ 챗봇 위젯: one script tag adds a chat button and panel to any page.
 *
 *   <script src="https://chat.example.kr/static/widget.js" data-api-base="https://chat.example.kr" defer></script>
 *
 * data-api-base is where the API lives (default: the service the script was loaded from).
 * It talks to POST {api-base}/api/v1/chat and /api/v1/feedback (see the API contract in the README).
 *
 * Why it is built the way it is:
 * - Every piece of text (answers, questions, the user's own messages, server errors) is set with
 *   textContent or text nodes, never parsed as HTML, so nothing in a reply can inject markup or script.
 * - The UI lives in a shadow root: the host page's CSS cannot break it and its CSS cannot leak out.
 * - The conversation (session id + the turns as data) is kept in localStorage and re-rendered by the
 *   same functions after a reload, so a reload continues the conversation the server also remembers.
 */
(function () {
  "use strict";

  const MAX_MESSAGE_CHARS = 1000; // the API's default MAX_MESSAGE_CHARS
  const MAX_COMMENT_CHARS = 2000; // the feedback endpoint's limit
  const MAX_STORED_ENTRIES = 60; // older turns are dropped from storage (the server keeps them all)
  const MAX_RELATED_QUESTIONS = 3;
  const REQUEST_TIMEOUT_MS = 30000;
  const LOG_SCROLL_MARGIN_PX = 12;
  const IME_KEY_CODE = 229;
  const STORAGE_KEY_PREFIX = "customs-chat:v1:";
  const HOST_ELEMENT_ID = "customs-chat-widget";

  const TEXT = {
    launcher: "관세 상담",
    openLabel: "관세 상담 챗봇 열기",
    closeLabel: "채팅 닫기",
    resetLabel: "새 대화 시작",
    title: "관세 FAQ 상담",
    subtitle: "관세청 자주 묻는 질문을 바탕으로 안내합니다",
    logLabel: "대화 내용",
    welcome: "안녕하세요! 여행자 면세한도, 해외직구 통관, 이사화물처럼 관세·통관에 관해 궁금한 점을 물어보세요.",
    inputLabel: "질문 입력",
    placeholder: "관세·통관 질문을 입력하세요",
    inputHint: "Enter 키로 보내고, Shift+Enter로 줄을 바꿉니다.",
    send: "보내기",
    notice: "참고용 안내이며, 정확한 내용은 관세청 125로 문의하세요.",
    you: "나: ",
    bot: "챗봇: ",
    typing: "답변을 준비하고 있습니다",
    generatedBadge: "자동 생성된 답변 · 공식 안내가 아닙니다",
    sourceLabel: "출처 FAQ",
    relatedLabel: "관련 질문",
    suggestedLabel: "이런 질문을 찾으셨나요?",
    feedbackPrompt: "도움이 되었나요?",
    helpful: "도움이 됐어요",
    unhelpful: "도움이 안 됐어요",
    yes: "네",
    no: "아니요",
    reasonLabel: "이유 (선택)",
    reasonPlaceholderHelpful: "좋았던 점을 알려 주세요 (선택)",
    reasonPlaceholderUnhelpful: "어떤 점이 부족했는지 알려 주세요 (선택)",
    reasonSend: "의견 보내기",
    reasonSkip: "이유 없이 보내기",
    feedbackThanks: "의견 감사합니다. 답변 개선에 활용하겠습니다.",
    feedbackFailed: "의견을 보내지 못했습니다: ",
    retry: "다시 보내기",
    network: "서버에 연결할 수 없습니다. 인터넷 연결을 확인한 뒤 다시 시도해 주세요.",
    timeout: "응답이 너무 오래 걸립니다. 잠시 후 다시 시도해 주세요.",
    badResponse: "서버 응답을 이해할 수 없습니다. 잠시 후 다시 시도해 주세요.",
    serverDetail: "서버 메시지: ",
    httpStatus: {
      400: "요청을 처리할 수 없습니다. 질문 내용을 확인해 주세요.",
      404: "요청한 대화나 답변을 찾을 수 없습니다.",
      413: "메시지가 너무 깁니다. 짧게 나누어 보내 주세요.",
      415: "요청 형식이 올바르지 않습니다.",
      429: "요청이 너무 많습니다. 잠시 후 다시 시도해 주세요.",
      503: "상담 서비스가 준비 중입니다. 잠시 후 다시 시도해 주세요.",
    },
    clientError: "요청을 처리할 수 없습니다.",
    serverError: "서버에 일시적인 문제가 생겼습니다. 잠시 후 다시 시도해 주세요.",
  };

  // Static icon shapes (24x24 viewBox), drawn with createElementNS: no markup strings anywhere.
  const ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z",
    close: "M6 6l12 12M18 6L6 18",
    reset: "M4 12a8 8 0 1 0 2.3-5.6M4 4v4h4",
    send: "M3 20l18-8L3 4l2 8-2 8zM5 12h8",
    thumbUp: "M7 11v10H4a1 1 0 0 1-1-1v-8a1 1 0 0 1 1-1h3zm0 0l4-8a2 2 0 0 1 2 2v4h5.5a2 2 0 0 1 2 2.3l-1.3 7A2 2 0 0 1 17.2 21H7",
    thumbDown: "M17 13V3h3a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1h-3zm0 0l-4 8a2 2 0 0 1-2-2v-4H5.5a2 2 0 0 1-2-2.3l1.3-7A2 2 0 0 1 6.8 3H17",
  };

  const script = document.currentScript;
  const LOADED = Symbol.for(HOST_ELEMENT_ID);
  if (window[LOADED]) return; // the script was included twice: one widget is enough
  window[LOADED] = true;

  /** The API root without a trailing slash: data-api-base, else the service that served this script. */
  function resolveApiBase() {
    const configured = script && script.getAttribute("data-api-base");
    if (configured !== null && configured !== undefined) return configured.replace(/\/+$/, "");
    return new URL("../", script.src).href.replace(/\/+$/, "");
  }

  const apiBase = resolveApiBase();
  const stylesheetUrl = new URL("widget.css", script.src).href;
  const storageKey = STORAGE_KEY_PREFIX + new URL(apiBase || "/", location.href).href;

  // ---- DOM helpers ---------------------------------------------------------------------------

  /** createElement with attributes; `text` sets textContent, `on<event>` adds a listener. */
  function el(tag, attributes, children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = value;
      else if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function icon(name) {
    const svgNs = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(svgNs, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    const path = document.createElementNS(svgNs, "path");
    path.setAttribute("d", ICONS[name]);
    path.setAttribute("fill", name === "chat" ? "currentColor" : "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
    svg.append(path);
    return svg;
  }

  /** Enter without Shift sends; an Enter that confirms a Hangul syllable in an IME must not (Safari
   * reports that one as keyCode 229 without isComposing). */
  function isSendKey(event) {
    return event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== IME_KEY_CODE;
  }

  function srOnly(text) {
    return el("span", { class: "sr-only", text: text });
  }

  // ---- storage: the conversation survives a reload --------------------------------------------

  /** { sessionId, entries: [{role:"user", text} | {role:"bot", reply, feedback}], open } */
  function loadState() {
    try {
      const saved = JSON.parse(localStorage.getItem(storageKey) || "null");
      if (saved && Array.isArray(saved.entries)) return saved;
    } catch (err) {
      // Storage disabled or corrupt: start a fresh conversation rather than fail.
    }
    return { sessionId: null, entries: [], open: false };
  }

  function saveState() {
    state.entries = state.entries.slice(-MAX_STORED_ENTRIES);
    try {
      localStorage.setItem(storageKey, JSON.stringify(state));
    } catch (err) {
      // Private mode or quota: the conversation still works, it just will not survive a reload.
    }
  }

  const state = loadState();

  // ---- API client --------------------------------------------------------------------------

  class WidgetError extends Error {
    constructor(message, detail) {
      super(message);
      this.detail = detail || "";
    }
  }

  function describeHttpError(status, body) {
    const serverMessage = body && body.error && typeof body.error.message === "string" ? body.error.message : "";
    const summary = TEXT.httpStatus[status] || (status >= 500 ? TEXT.serverError : TEXT.clientError);
    const detail = TEXT.serverDetail + (serverMessage || "(없음)") + " (HTTP " + status + ")";
    return new WidgetError(summary, detail);
  }

  async function postJson(path, payload) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    let response;
    try {
      response = await fetch(apiBase + path, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
    } catch (err) {
      throw new WidgetError(err && err.name === "AbortError" ? TEXT.timeout : TEXT.network);
    } finally {
      clearTimeout(timer);
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) throw describeHttpError(response.status, body);
    if (!body || typeof body !== "object") throw new WidgetError(TEXT.badResponse);
    return body;
  }

  /** The part of a chat response the widget shows and stores. */
  function replyFromResponse(body) {
    if (typeof body.answer !== "string" || typeof body.message_id !== "string") {
      throw new WidgetError(TEXT.badResponse);
    }
    const source = body.source && typeof body.source === "object" ? body.source : null;
    const candidates = Array.isArray(body.candidates) ? body.candidates : [];
    return {
      message_id: body.message_id,
      route: body.route === "generation" ? "generation" : "retrieval",
      answer: body.answer,
      source: source && { doc_id: String(source.doc_id || ""), question: String(source.question || ""),
        category: String(source.category || "") },
      candidates: candidates
        .filter((c) => c && typeof c.question === "string")
        .map((c) => ({ doc_id: String(c.doc_id || ""), question: c.question })),
    };
  }

  // ---- rendering -------------------------------------------------------------------------------

  /** Related questions: candidates other than the source, each shown once. */
  function relatedQuestions(reply) {
    const seen = new Set(reply.source ? [reply.source.doc_id] : []);
    const related = [];
    for (const candidate of reply.candidates) {
      if (seen.has(candidate.doc_id)) continue;
      seen.add(candidate.doc_id);
      related.push(candidate);
      if (related.length === MAX_RELATED_QUESTIONS) break;
    }
    return related;
  }

  function renderUserMessage(entry) {
    return el("div", { class: "msg msg-user" }, [srOnly(TEXT.you), entry.text]);
  }

  function renderSource(source) {
    return el("p", { class: "source" }, [
      el("span", { class: "source-label", text: TEXT.sourceLabel }),
      source.category ? el("span", { class: "category", text: source.category }) : " ",
      el("span", { class: "source-question", text: source.question }),
    ]);
  }

  function renderRelated(reply) {
    const related = relatedQuestions(reply);
    if (!related.length) return null;
    const label = reply.route === "generation" ? TEXT.suggestedLabel : TEXT.relatedLabel;
    const items = related.map((candidate) =>
      el("li", {}, [
        el("button", {
          type: "button",
          class: "related-button",
          "data-doc-id": candidate.doc_id,
          text: candidate.question,
          onclick: () => ask(candidate.question),
        }),
      ]));
    return el("div", { class: "related" }, [el("p", { class: "related-label", text: label }), el("ul", {}, items)]);
  }

  function renderBotMessage(entry) {
    const reply = entry.reply;
    const generated = reply.route === "generation";
    return el("div", { class: "msg msg-bot" + (generated ? " msg-generated" : ""), "data-route": reply.route,
      "data-message-id": reply.message_id }, [
      srOnly(TEXT.bot),
      generated ? el("p", { class: "badge", text: TEXT.generatedBadge }) : null,
      el("p", { class: "answer", text: reply.answer }),
      reply.source ? renderSource(reply.source) : null,
      renderRelated(reply),
      renderFeedback(entry),
    ]);
  }

  /** Thumbs up/down, then an optional reason; only a sent rating is stored with the entry. */
  function renderFeedback(entry) {
    const status = el("p", { class: "feedback-status", role: "status" });
    const box = el("div", { class: "feedback" });
    const thumbs = [true, false].map((helpful) =>
      el("button", {
        type: "button",
        class: "thumb",
        "data-helpful": String(helpful),
        "aria-label": helpful ? TEXT.helpful : TEXT.unhelpful,
        title: helpful ? TEXT.helpful : TEXT.unhelpful,
        "aria-pressed": "false",
        onclick: () => chooseRating(helpful),
      }, [icon(helpful ? "thumbUp" : "thumbDown"), el("span", { text: helpful ? TEXT.yes : TEXT.no })]));
    const row = el("div", { class: "feedback-row" }, [el("span", { text: TEXT.feedbackPrompt }), ...thumbs]);
    const reasonInput = el("textarea", { "aria-label": TEXT.reasonLabel, maxlength: MAX_COMMENT_CHARS, rows: 2 });
    const reason = el("div", { class: "reason", hidden: true }, [
      reasonInput,
      el("div", { class: "reason-actions" }, [
        el("button", { type: "button", class: "text-button", text: TEXT.reasonSkip, onclick: () => submit(false) }),
        el("button", { type: "button", class: "primary-button", text: TEXT.reasonSend, onclick: () => submit(true) }),
      ]),
    ]);
    reasonInput.addEventListener("keydown", (event) => {
      if (isSendKey(event)) {
        event.preventDefault();
        submit(true);
      }
    });
    let chosen = null;

    function showRating(helpful, locked) {
      for (const thumb of thumbs) {
        thumb.setAttribute("aria-pressed", String(thumb.dataset.helpful === String(helpful)));
        thumb.disabled = locked;
      }
    }

    function chooseRating(helpful) {
      chosen = helpful;
      showRating(helpful, false);
      reasonInput.placeholder = helpful ? TEXT.reasonPlaceholderHelpful : TEXT.reasonPlaceholderUnhelpful;
      reason.hidden = false;
      reasonInput.focus();
    }

    async function submit(withComment) {
      const comment = withComment ? reasonInput.value.trim() : "";
      const payload = { message_id: entry.reply.message_id, helpful: chosen };
      if (comment) payload.comment = comment;
      status.classList.remove("is-error");
      try {
        await postJson("/api/v1/feedback", payload);
      } catch (err) {
        status.classList.add("is-error");
        status.textContent = TEXT.feedbackFailed + err.message + (err.detail ? " " + err.detail : "");
        return;
      }
      entry.feedback = { helpful: chosen };
      saveState();
      reason.hidden = true;
      showRating(chosen, true);
      status.textContent = TEXT.feedbackThanks;
      input.focus(); // the focused reason box is gone: continue where the conversation goes on
    }

    box.append(row, reason, status);
    if (entry.feedback) {
      showRating(entry.feedback.helpful, true);
      status.textContent = TEXT.feedbackThanks;
    }
    return box;
  }

  function renderError(error, onRetry) {
    return el("div", { class: "msg msg-error", role: "alert" }, [
      el("p", { text: error.message }),
      error.detail ? el("p", { class: "error-detail", text: error.detail }) : null,
      onRetry ? el("p", { class: "error-actions" }, [
        el("button", { type: "button", class: "text-button retry", text: TEXT.retry, onclick: onRetry }),
      ]) : null,
    ]);
  }

  function renderTyping() {
    return el("div", { class: "msg msg-bot typing", "aria-busy": "true" }, [
      srOnly(TEXT.typing),
      el("span", { class: "typing-dot", "aria-hidden": "true" }),
      el("span", { class: "typing-dot", "aria-hidden": "true" }),
      el("span", { class: "typing-dot", "aria-hidden": "true" }),
    ]);
  }

  function renderEntry(entry) {
    return entry.role === "user" ? renderUserMessage(entry) : renderBotMessage(entry);
  }

  // ---- the widget --------------------------------------------------------------------------

  const log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": TEXT.logLabel });
  const input = el("textarea", { "aria-label": TEXT.inputLabel, "aria-describedby": "cc-input-hint",
    placeholder: TEXT.placeholder, rows: 1, maxlength: MAX_MESSAGE_CHARS, enterkeyhint: "send" });
  const sendButton = el("button", { type: "submit", class: "send", "aria-label": TEXT.send, title: TEXT.send },
    [icon("send")]);
  const launcher = el("button", { type: "button", class: "launcher", "aria-label": TEXT.openLabel,
    "aria-expanded": "false", "aria-controls": "cc-panel", onclick: () => setOpen(panel.hidden) },
  [icon("chat"), el("span", { text: TEXT.launcher })]);
  const panel = el("div", { id: "cc-panel", class: "panel", role: "dialog", "aria-modal": "false",
    "aria-labelledby": "cc-title", hidden: true }, [
    el("div", { class: "header" }, [
      el("div", { class: "header-text" }, [
        el("h2", { id: "cc-title", class: "title", text: TEXT.title }),
        el("p", { class: "subtitle", text: TEXT.subtitle }),
      ]),
      el("button", { type: "button", class: "icon-button reset", "aria-label": TEXT.resetLabel,
        title: TEXT.resetLabel, onclick: resetConversation }, [icon("reset")]),
      el("button", { type: "button", class: "icon-button close", "aria-label": TEXT.closeLabel,
        title: TEXT.closeLabel, onclick: () => setOpen(false) }, [icon("close")]),
    ]),
    log,
    el("form", { class: "composer", onsubmit: onSubmit }, [input, sendButton]),
    el("p", { id: "cc-input-hint", class: "sr-only", text: TEXT.inputHint }),
    el("p", { class: "notice", text: TEXT.notice }),
  ]);
  let busy = false;

  function scrollToEnd() {
    log.scrollTop = log.scrollHeight;
  }

  /** A long answer is read from its start: bring the question that opened the turn to the top. */
  function scrollToTurn(userNode) {
    log.scrollTop = userNode.offsetTop - LOG_SCROLL_MARGIN_PX;
  }

  function renderConversation() {
    log.replaceChildren(el("div", { class: "msg msg-bot welcome" }, [srOnly(TEXT.bot), TEXT.welcome]),
      ...state.entries.map(renderEntry));
    scrollToEnd();
  }

  function setOpen(open) {
    state.open = open;
    saveState();
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcher.classList.toggle("is-open", open);
    if (open) {
      scrollToEnd();
      fitInput();
      input.focus();
    } else {
      launcher.focus();
    }
  }

  function setBusy(value) {
    busy = value;
    sendButton.disabled = value;
    for (const button of log.querySelectorAll(".related-button")) button.disabled = value;
  }

  function resetConversation() {
    state.sessionId = null;
    state.entries = [];
    saveState();
    renderConversation();
    input.focus();
  }

  /** Sends one message; on failure the message stays on screen with the error and a retry button. */
  async function ask(rawText) {
    const text = rawText.trim();
    if (!text || busy) return;
    setBusy(true);
    const userEntry = { role: "user", text: text };
    const userNode = renderUserMessage(userEntry);
    const typing = renderTyping();
    log.append(userNode, typing);
    scrollToEnd();
    try {
      const payload = { message: text };
      if (state.sessionId) payload.session_id = state.sessionId;
      const body = await postJson("/api/v1/chat", payload);
      const botEntry = { role: "bot", reply: replyFromResponse(body), feedback: null };
      state.sessionId = typeof body.session_id === "string" ? body.session_id : state.sessionId;
      state.entries.push(userEntry, botEntry);
      saveState();
      typing.replaceWith(renderBotMessage(botEntry));
      scrollToTurn(userNode);
    } catch (err) {
      const error = err instanceof WidgetError ? err : new WidgetError(TEXT.badResponse);
      const errorNode = renderError(error, () => {
        userNode.remove();
        errorNode.remove();
        ask(text);
      });
      typing.replaceWith(errorNode);
      scrollToEnd();
    } finally {
      setBusy(false);
    }
  }

  function onSubmit(event) {
    event.preventDefault();
    if (busy || !input.value.trim()) return;
    const text = input.value;
    input.value = "";
    fitInput();
    ask(text);
    input.focus();
  }

  /** Grow the input with its content (up to the CSS max-height). */
  function fitInput() {
    input.style.height = "auto";
    const borders = input.offsetHeight - input.clientHeight; // box-sizing: border-box
    input.style.height = input.scrollHeight + borders + "px";
    input.style.overflowY = input.scrollHeight > input.clientHeight ? "auto" : "hidden";
  }

  input.addEventListener("input", fitInput);
  input.addEventListener("keydown", (event) => {
    if (isSendKey(event)) {
      event.preventDefault();
      panel.querySelector(".composer").requestSubmit();
    }
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      setOpen(false);
    }
  });

  function mount() {
    const host = el("div", { id: HOST_ELEMENT_ID, hidden: true });
    const root = host.attachShadow({ mode: "open" });
    const stylesheet = el("link", { rel: "stylesheet", href: stylesheetUrl });
    // Shown once styled (or if the stylesheet fails, unstyled but usable).
    const reveal = () => { host.hidden = false; };
    stylesheet.addEventListener("load", reveal);
    stylesheet.addEventListener("error", reveal);
    root.append(stylesheet, launcher, panel);
    document.body.append(host);
    renderConversation();
    panel.hidden = !state.open;
    launcher.setAttribute("aria-expanded", String(state.open));
    launcher.classList.toggle("is-open", state.open);
  }

  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);
})();

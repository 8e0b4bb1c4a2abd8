// The live admin inbox: the conversation list and an open thread ask the server what changed since
// their cursor every few seconds (a small JSON answer), and update in place without a reload. The
// thread page also sends the on_open receipt, switches template fields and guards double submits.
(function () {
  "use strict";

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  // Poll `url?since=cursor` every `seconds`, one request at a time; `apply(answer)` takes each answer.
  function poll(root, apply) {
    let cursor = root.dataset.cursor;
    const seconds = Number(root.dataset.pollSeconds) || 3;
    async function tick() {
      try {
        const url = root.dataset.liveUrl;
        const response = await fetch(url + (url.includes("?") ? "&" : "?") + "since=" + encodeURIComponent(cursor), {
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        if (response.ok) {
          const answer = await response.json();
          cursor = answer.cursor;
          apply(answer);
        }
      } catch (error) {
        // Offline for a moment: the next poll asks again from the same cursor.
      }
      window.setTimeout(tick, seconds * 1000);
    }
    window.setTimeout(tick, seconds * 1000);
  }

  // --- The thread ---------------------------------------------------------------------------------

  function bubbleFor(message) {
    const bubble = document.createElement("div");
    bubble.className = "bubble " + message.direction;
    bubble.dataset.id = message.id;
    if (message.sent_from_app) {
      const fromApp = document.createElement("span");
      fromApp.className = "kind from-app";
      fromApp.textContent = "sent from the WhatsApp Business app";
      bubble.append(fromApp, document.createElement("br"));
    }
    if (message.type !== "text") {
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = message.type;
      bubble.append(kind, document.createElement("br"));
    }
    if (message.media_url) bubble.append(mediaFor(message.type, message.media_url));
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message.text || "…";
    const meta = document.createElement("span");
    meta.className = "meta";
    bubble.append(text, meta);
    return bubble;
  }

  // As templates/admin/inbox/conversation/media.html draws it: Kirim's media URL, never Meta's.
  function mediaFor(type, url) {
    if (type === "image" || type === "sticker") {
      const image = document.createElement("img");
      image.className = "media";
      image.src = url;
      image.alt = type;
      return image;
    }
    if (type === "audio") {
      const audio = document.createElement("audio");
      audio.className = "media";
      audio.controls = true;
      audio.preload = "metadata";
      audio.src = url;
      return audio;
    }
    const link = document.createElement("a");
    link.className = "media-download";
    link.href = url;
    link.download = "";
    link.textContent = "Download " + type;
    return link;
  }

  function noteBubble(note) {
    const bubble = document.createElement("div");
    bubble.className = "bubble note";
    bubble.dataset.note = note.id;
    const kind = document.createElement("span");
    kind.className = "kind";
    kind.textContent = "Private note · " + (note.author || "—");
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = note.body;
    const meta = document.createElement("span");
    meta.className = "meta";
    meta.textContent = note.time;
    bubble.append(kind, document.createElement("br"), text, meta);
    return bubble;
  }

  function applyThread(thread, page, answer) {
    const end = thread.querySelector(".thread-end");
    for (const message of answer.messages) {
      let bubble = thread.querySelector('.bubble[data-id="' + message.id + '"]');
      if (!bubble) {
        bubble = bubbleFor(message);
        thread.insertBefore(bubble, end);
        const empty = thread.querySelector(".no-messages");
        if (empty) empty.remove();
      }
      bubble.dataset.status = message.status;
      bubble.querySelector(".meta").innerHTML = message.time + " " + message.tick; // server-escaped HTML
      // An edit or a deletion changes the text of a bubble on screen; a deletion leaves only its marker.
      bubble.querySelector(".text").textContent = message.deleted ? "This message was deleted" : message.text || "…";
      if (message.deleted) {
        bubble.classList.add("deleted");
        for (const gone of bubble.querySelectorAll(".earlier, .kind:not(.from-app)")) gone.remove();
      }
    }
    for (const note of answer.notes || []) {
      if (!thread.querySelector('.bubble[data-note="' + note.id + '"]')) thread.insertBefore(noteBubble(note), end);
    }
    const state = document.getElementById("conversation-state");
    if (state && answer.state) state.innerHTML = answer.state; // server-escaped HTML
    const assignee = document.getElementById("conversation-assignee");
    if (assignee && answer.assignee) assignee.textContent = answer.assignee;
    const markRead = document.getElementById("mark-read");
    if (markRead && answer.unread === 0) markRead.closest("form").remove();
    const note = document.getElementById("window-note");
    const input = document.getElementById("reply-text-input");
    if (note && input) {
      note.hidden = answer.window_open;
      note.textContent = answer.window_reason;
      input.disabled = !answer.window_open;
      document.getElementById("send-text").disabled = !answer.window_open;
    }
  }

  function startThread(page) {
    const thread = document.getElementById("thread");
    thread.scrollIntoView({ block: "end" });
    if (page.dataset.openedUrl) {
      fetch(page.dataset.openedUrl, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      });
    }
    poll(page, (answer) => applyThread(thread, page, answer));

    const picker = document.getElementById("template-picker");
    if (picker) {
      picker.addEventListener("change", () => {
        for (const fields of document.querySelectorAll(".template-fields")) {
          const chosen = fields.dataset.template === picker.value;
          fields.hidden = !chosen;
          fields.disabled = !chosen;
        }
      });
    }
    // A saved reply goes into the reply box, its variables filled in by the server; its attachment
    // is sent with it unless the agent picks another file.
    const saved = document.getElementById("saved-reply-picker");
    if (saved) {
      saved.addEventListener("change", () => {
        const option = saved.selectedOptions[0];
        const box = document.getElementById("reply-text-input");
        document.getElementById("saved-reply-id").value = saved.value;
        document.getElementById("saved-reply-attachment").textContent =
          option.dataset.attachment ? "With " + option.dataset.attachment : "";
        if (saved.value && box && !box.disabled) {
          box.value = box.value ? box.value + "\n" + option.dataset.text : option.dataset.text;
          box.focus();
        }
      });
    }
    // The typing bubble, on numbers that show it: Meta keeps it ~25 s, so one call per 20 s of writing.
    const input = document.getElementById("reply-text-input");
    if (input && input.dataset.typingUrl) {
      let lastSent = 0;
      input.addEventListener("input", () => {
        if (Date.now() - lastSent < 20000 || !input.value.trim()) return;
        lastSent = Date.now();
        fetch(input.dataset.typingUrl, {
          method: "POST",
          headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
          credentials: "same-origin",
        });
      });
    }
    // A second click while the first submit is on its way would post the same token: the server
    // sends once anyway, and the button says so sooner.
    for (const form of document.querySelectorAll("#reply form")) {
      form.addEventListener("submit", () => {
        for (const button of form.querySelectorAll("input[type=submit]")) button.disabled = true;
      });
    }
  }

  // --- The conversation list ----------------------------------------------------------------------

  function rowOf(id) {
    const box = document.querySelector('#result_list input.action-select[value="' + id + '"]');
    return box ? box.closest("tr") : null;
  }

  function fillRow(row, conversation) {
    const box = row.querySelector("input.action-select");
    if (box) {
      box.value = conversation.id;
      box.checked = false;
    }
    const link = row.querySelector(".field-contact a");
    if (link) {
      link.href = conversation.url;
      link.innerHTML = conversation.contact; // server-escaped HTML
    }
    const cells = {
      ".field-phone_number": conversation.phone_number,
      ".field-preview": conversation.preview,
      ".field-last_message_at": conversation.last_message_at,
      ".field-assignee_name": conversation.assignee,
    };
    for (const [selector, text] of Object.entries(cells)) {
      const cell = row.querySelector(selector);
      if (cell) cell.textContent = text;
    }
    const html = { ".field-state_shown": conversation.state, ".field-label_chips": conversation.labels };
    for (const [selector, markup] of Object.entries(html)) {
      const cell = row.querySelector(selector);
      if (cell) cell.innerHTML = markup; // server-escaped HTML
    }
    const unread = row.querySelector(".field-unread_badge");
    if (unread) unread.innerHTML = conversation.unread_badge; // server-escaped HTML
    row.dataset.lastMessageTs = conversation.last_message_ts;
  }

  function applyInbox(root, note, answer) {
    const body = document.querySelector("#result_list tbody");
    // The server says whether a changed conversation is still in the page's view and label: one that
    // left (assigned, resolved) leaves the list. Only a list filtered by nothing else and in the
    // default order takes rows in and moves them: elsewhere a changed conversation might not belong
    // where it would land, so the page offers a reload instead.
    const params = new URLSearchParams(window.location.search);
    const defaultView = [...params.keys()].every((name) => name === "view" || name === "labels__id__exact");
    let elsewhere = answer.reload;
    // Oldest first, so that each row moved to the top leaves the newest activity on top.
    for (const conversation of answer.conversations.slice().reverse()) {
      const newer = Date.parse(conversation.last_message_ts) >= Date.parse(root.dataset.newest || 0);
      let row = rowOf(conversation.id);
      if (!conversation.in_view) {
        if (row) row.remove();
        continue;
      }
      if (!row && defaultView && newer && body && body.rows.length) {
        row = body.rows[0].cloneNode(true);
        row.classList.remove("selected");
        if (body.rows.length >= Number(root.dataset.perPage)) body.lastElementChild.remove(); // a full page stays full
      }
      if (!row) {
        elsewhere = true;
        continue;
      }
      fillRow(row, conversation);
      if (defaultView && newer) {
        body.prepend(row);
        root.dataset.newest = conversation.last_message_ts;
      }
    }
    if (elsewhere && note) note.hidden = false;
  }

  function startInbox(root) {
    const note = document.getElementById("inbox-live-note");
    root.dataset.liveUrl += window.location.search; // the page's view and filters, for `in_view`
    poll(root, (answer) => applyInbox(root, note, answer));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const page = document.querySelector(".inbox-thread-page");
    if (page) startThread(page);
    const inbox = document.getElementById("inbox-live");
    if (inbox) startInbox(inbox);
  });
})();

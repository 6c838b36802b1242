// The chat page: streams replies from /v1/chat/completions (SSE over fetch) and shows each reply's
// finish_reason and token counts. The API key is kept in this browser's localStorage only.
// A link ending in #ask=<text> sends <text> once the page has loaded.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log");
const history = [];
const KEY_STORE = "alignkit-api-key";

$("api-key").value = localStorage.getItem(KEY_STORE) || "";
$("api-key").addEventListener("change", () => localStorage.setItem(KEY_STORE, $("api-key").value.trim()));

function headers() {
  const key = $("api-key").value.trim();
  const result = { "Content-Type": "application/json" };
  if (key) result["Authorization"] = "Bearer " + key;
  return result;
}

function bubble(kind, text) {
  const node = document.createElement("div");
  node.className = "msg " + kind;
  node.textContent = text;
  log.appendChild(node);
  log.scrollTop = log.scrollHeight;
  return node;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return `${response.status}: ${body.error.message}`;
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

async function loadModels() {
  const response = await fetch("v1/models", { headers: headers() });
  if (!response.ok) {
    bubble("error", "listing models failed: " + (await errorText(response)));
    return;
  }
  const body = await response.json();
  const select = $("model");
  select.innerHTML = "";
  for (const model of body.data) {
    const option = document.createElement("option");
    option.value = model.id;
    option.textContent = model.parent ? `${model.id} (adapter on ${model.parent})` : model.id;
    select.appendChild(option);
  }
}

// Reads "data: ..." events from an SSE body; calls onEvent with each parsed JSON payload.
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      for (const line of event.split(/\r?\n/)) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        onEvent(JSON.parse(data));
      }
    }
  }
}

async function send(text) {
  if (!text.trim()) return;
  $("send").disabled = true;
  history.push({ role: "user", content: text });
  bubble("user", text);
  const reply = bubble("assistant", "");
  const body = {
    model: $("model").value || undefined,
    messages: history,
    stream: true,
    stream_options: { include_usage: true },
    temperature: Number($("temperature").value),
    max_tokens: Number($("max-tokens").value),
    repetition_penalty: Number($("repetition-penalty").value),
  };
  let content = "";
  let finish = "";
  try {
    const response = await fetch("v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body) });
    if (!response.ok) throw new Error(await errorText(response));
    await readEvents(response, (event) => {
      if (event.error) throw new Error(event.error.message);
      for (const choice of event.choices || []) {
        if (choice.delta && choice.delta.content) {
          content += choice.delta.content;
          reply.textContent = content;
          log.scrollTop = log.scrollHeight;
        }
        if (choice.finish_reason) finish = choice.finish_reason;
      }
      if (event.usage) {
        const meta = document.createElement("span");
        meta.className = "meta";
        meta.textContent = `finish_reason: ${finish} · prompt ${event.usage.prompt_tokens} tokens · ` +
          `reply ${event.usage.completion_tokens} tokens`;
        meta.dataset.finishReason = finish;
        reply.appendChild(meta);
      }
    });
    history.push({ role: "assistant", content });
  } catch (error) {
    reply.remove();
    history.pop();
    bubble("error", String(error.message || error));
  } finally {
    $("send").disabled = false;
  }
}

$("form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("input").value;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    $("form").requestSubmit();
  }
});
$("reset").addEventListener("click", () => {
  history.length = 0;
  log.innerHTML = "";
});

loadModels().then(() => {
  const match = location.hash.match(/^#ask=(.*)$/);
  if (match) send(decodeURIComponent(match[1]));
});

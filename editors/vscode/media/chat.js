// The chat view's page script. State lives in the extension (ChatSession);
// this renders the changes it posts and reports the user's actions.
(function () {
  'use strict';
  const vscode = acquireVsCodeApi();
  const $ = (id) => document.getElementById(id);
  const messages = $('messages');
  const prompt = $('prompt');
  const sessions = $('sessions');
  const rendered = new Map(); // entry id -> { version, element }

  const escapeHtml = (text) =>
    String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

  // Raw HTML in model output is shown as text, never interpreted.
  marked.use({ gfm: true, breaks: false, renderer: { html: (token) => escapeHtml(token.text ?? token.raw ?? '') } });

  const markdown = (text) => marked.parse(text || '');

  function el(tag, className, html) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (html !== undefined) node.innerHTML = html;
    return node;
  }

  function renderDiff(diff) {
    const lines = diff.split('\n').map((line) => {
      const kind = line.startsWith('+') && !line.startsWith('+++') ? 'add'
        : line.startsWith('-') && !line.startsWith('---') ? 'del'
        : line.startsWith('@@') ? 'hunk' : '';
      return `<span class="diff-line ${kind}">${escapeHtml(line)}</span>`;
    });
    return `<pre class="diff">${lines.join('\n')}</pre>`;
  }

  function inputSummary(input) {
    if (!input || typeof input !== 'object') return '';
    const main = input.file_path ?? input.path ?? input.command ?? input.pattern ?? input.url;
    return main !== undefined ? String(main) : JSON.stringify(input);
  }

  function renderCard(card) {
    const node = el('div', `tool-card status-${card.status}`);
    node.dataset.toolCallId = card.id;
    const decision = card.decision ? `<span class="decision decision-${card.decision}">${escapeHtml(card.decision)}</span>` : '';
    node.appendChild(el('div', 'tool-head',
      `<span class="tool-name">${escapeHtml(card.name)}</span>` +
      `<span class="tool-target">${escapeHtml(inputSummary(card.input))}</span>` +
      `<span class="tool-status">${escapeHtml(card.status.replace('_', ' '))}</span>${decision}`));
    if (card.diff) {
      node.appendChild(el('div', 'tool-diff', renderDiff(card.diff)));
    } else if (card.content) {
      const body = card.content.length > 2000 ? card.content.slice(0, 2000) + '\n…' : card.content;
      const details = el('details', 'tool-result' + (card.isError ? ' error' : ''),
        `<summary>${card.isError ? 'error' : 'result'}</summary><pre>${escapeHtml(body)}</pre>`);
      if (card.isError) details.open = true;
      node.appendChild(details);
    }
    return node;
  }

  function chip(item, removable) {
    const node = el('span', `chip chip-${item.kind}`);
    node.title = item.title || item.uri || '';
    node.appendChild(el('span', 'chip-label', escapeHtml(item.label)));
    if (removable) {
      const remove = el('button', 'chip-remove', '×');
      remove.type = 'button';
      remove.title = `Do not send ${item.label}`;
      remove.addEventListener('click', () => vscode.postMessage({ type: 'removeContext', key: item.key }));
      node.appendChild(remove);
    }
    return node;
  }

  function renderEntry(entry) {
    const node = el('div', `entry ${entry.role}${entry.streaming ? ' streaming' : ''}`);
    node.dataset.id = entry.id;
    const role = el('div', 'role', entry.role === 'assistant' ? 'Crush' : entry.role === 'user' ? 'You' : 'Error');
    if (entry.role === 'user') {
      const rewind = el('button', 'rewind link', '↶ rewind');
      rewind.type = 'button';
      rewind.title = 'Go back to before this message: restore the files the agent changed from here on';
      rewind.addEventListener('click', () => vscode.postMessage({ type: 'rewind', messageId: entry.id }));
      role.appendChild(rewind);
    }
    node.appendChild(role);
    if (entry.context && entry.context.length) {
      const chips = el('div', 'chips');
      entry.context.forEach((c) => chips.appendChild(chip(c, false)));
      node.appendChild(chips);
    }
    if (entry.reasoning) {
      node.appendChild(el('details', 'reasoning', `<summary>Thinking</summary>${markdown(entry.reasoning)}`));
    }
    if (entry.text) {
      node.appendChild(el('div', 'body', entry.role === 'error' ? escapeHtml(entry.text) : markdown(entry.text)));
    }
    entry.tools.forEach((card) => node.appendChild(renderCard(card)));
    if (entry.finishReason === 'canceled') node.appendChild(el('div', 'finish', 'Canceled'));
    return node;
  }

  function applyChange(change) {
    const nearBottom = messages.scrollHeight - messages.scrollTop - messages.clientHeight < 40;
    if (change.reset) {
      messages.textContent = '';
      rendered.clear();
    }
    for (const entry of change.entries) {
      const known = rendered.get(entry.id);
      if (known && known.version === entry.version) continue;
      const node = renderEntry(entry);
      if (known) known.element.replaceWith(node);
      else messages.appendChild(node);
      rendered.set(entry.id, { version: entry.version, element: node });
    }
    renderStatus(change.status);
    if (nearBottom || change.reset) messages.scrollTop = messages.scrollHeight;
  }

  const STATUS_LETTER = { added: 'A', modified: 'M', deleted: 'D' };

  function renderChanges(changes) {
    const section = $('changes');
    const files = changes ? changes.files : [];
    section.hidden = files.length === 0;
    $('changes-title').textContent = `${files.length} changed file${files.length === 1 ? '' : 's'}`;
    const list = $('changes-list');
    list.textContent = '';
    for (const f of files) {
      const row = el('li', `change change-${f.status}`);
      row.dataset.path = f.path;
      const open = el('a', 'change-path', `<span class="change-status">${STATUS_LETTER[f.status] || '?'}</span> ${escapeHtml(f.path)}`);
      open.href = '#';
      open.title = `Open the diff of ${f.path} (before ↔ now)`;
      open.addEventListener('click', (e) => { e.preventDefault(); vscode.postMessage({ type: 'openChange', path: f.path }); });
      row.appendChild(open);
      row.appendChild(el('span', 'change-counts', `<span class="add">+${f.additions}</span> <span class="del">-${f.removals}</span>`));
      const reviewed = [f.accepted && `${f.accepted} accepted`, f.rejected && `${f.rejected} rejected`].filter(Boolean).join(', ');
      if (reviewed) row.appendChild(el('span', 'change-reviewed', escapeHtml(reviewed)));
      if (f.accepted + f.rejected >= f.hunks) { list.appendChild(row); continue; } // nothing left to decide
      for (const [decision, label] of [['accept', '✓'], ['reject', '✗']]) {
        const button = el('button', `icon change-${decision}`, label);
        button.type = 'button';
        button.title = `${decision === 'accept' ? 'Accept' : 'Reject'} every change of ${f.path}`;
        button.addEventListener('click', () => vscode.postMessage({ type: 'review', path: f.path, decision }));
        row.appendChild(button);
      }
      list.appendChild(row);
    }
  }

  function renderContext(chips) {
    const box = $('context');
    box.textContent = '';
    chips.forEach((c) => box.appendChild(chip(c, true)));
    box.hidden = chips.length === 0;
  }

  function renderStatus(status) {
    $('busy').hidden = !status.busy;
    renderChanges(status.changes);
    $('rewound').hidden = !status.canUnrewind;
    $('take-back').hidden = status.queued.length === 0;
    const queue = $('queue');
    queue.hidden = status.queued.length === 0;
    queue.textContent = status.queued.length ? `${status.queued.length} queued` : '';
    queue.title = status.queued.map((q) => q.prompt).join('\n');
    document.body.classList.toggle('busy', status.busy);
    if (status.sessionId) {
      let option = [...sessions.options].find((o) => o.value === status.sessionId);
      if (!option) {
        option = new Option(status.title || 'New session', status.sessionId);
        sessions.appendChild(option);
      }
      if (status.title) option.textContent = status.title; // titles change after the first prompt
      sessions.value = status.sessionId;
    }
  }

  function renderSessions(list, currentId) {
    sessions.textContent = '';
    for (const s of list) sessions.appendChild(new Option(s.title || '(untitled)', s.id));
    if (currentId) sessions.value = currentId;
  }

  function showError(message) {
    const box = $('error');
    box.textContent = message;
    box.hidden = false;
  }

  // The server's state: a failure (with what to do) or a reconnect; hidden while all is well.
  function showServer(kind, message) {
    const box = $('server');
    box.hidden = !message;
    box.textContent = message || '';
    box.className = kind === 'failed' || kind === 'gave-up' ? 'server-problem' : 'server-notice';
    box.dataset.kind = kind || '';
  }

  function send() {
    const text = prompt.value;
    if (!text.trim()) return;
    $('error').hidden = true;
    vscode.postMessage({ type: 'send', text });
    prompt.value = '';
  }

  $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $('cancel').addEventListener('click', () => vscode.postMessage({ type: 'cancel' }));
  $('take-back').addEventListener('click', () => vscode.postMessage({ type: 'takeBack' }));
  $('accept-all').addEventListener('click', () => vscode.postMessage({ type: 'review', decision: 'accept' }));
  $('reject-all').addEventListener('click', () => vscode.postMessage({ type: 'review', decision: 'reject' }));
  $('unrewind').addEventListener('click', () => vscode.postMessage({ type: 'unrewind' }));
  $('new-session').addEventListener('click', () => vscode.postMessage({ type: 'newSession' }));
  $('pick-session').addEventListener('click', () => vscode.postMessage({ type: 'pickSession' }));
  sessions.addEventListener('change', () => vscode.postMessage({ type: 'openSession', sessionId: sessions.value }));

  window.addEventListener('message', (event) => {
    const message = event.data;
    if (message.type === 'change') applyChange(message);
    else if (message.type === 'sessions') renderSessions(message.sessions, message.currentId);
    else if (message.type === 'error') showError(message.message);
    else if (message.type === 'server') showServer(message.kind, message.message);
    else if (message.type === 'context') renderContext(message.chips);
    else if (message.type === 'setPrompt') { prompt.value = message.text; prompt.focus(); }
  });
  vscode.postMessage({ type: 'ready' });
})();

-- crush.nvim: a chat with the crush-ls agent, through Neovim's LSP client.
--
--   require("crush").setup({ cmd = { "crush-ls" }, init_options = { ... } })
--   require("crush").send("explain this repo")   -- also :CrushChat, :CrushCancel,
--   require("crush").cancel()                    -- :CrushNew, :CrushSessions
--   require("crush").new_session()
local config = require("crush.config")
local client = require("crush.client")
local chat = require("crush.chat")

local M = {}

-- What the plugin knows of the conversation shown in crush://chat.
local state = {
  session_id = nil,
  runs = {}, -- runId -> "queued" | "running", until its run_complete
  user_by_run = {}, -- runId -> the user entry of that prompt
  completion_notes = {}, -- runId -> the note its run_complete added ("[canceled]")
  taken_back = {}, -- runId -> true: a queued prompt taken back (:CrushTakeBack), until its run_complete
  assistant_by_message = {}, -- messageId -> assistant entry
  tool_parts = {}, -- toolCallId -> tool part (its `entry` is the owner)
  last_run_complete = nil,
  mcp_servers = {}, -- the workspace's MCP servers, as agent/mcpServers and mcp_updated give them
}
M.state = state

local run_counter = 0

local function new_run_id()
  run_counter = run_counter + 1
  return string.format("nvim-%d-%d", vim.uv.hrtime(), run_counter)
end

local function note(text)
  return chat.add({ kind = "note", text = text })
end

local function error_note(err)
  local reason = err.data and err.data.reason
  note(string.format("[error] %s%s", reason and (reason .. ": ") or "", err.message or vim.inspect(err)))
end

local function refresh_status()
  local running, queued = 0, 0
  for _, run_state in pairs(state.runs) do
    if run_state == "running" then
      running = running + 1
    else
      queued = queued + 1
    end
  end
  local label = running > 0 and "running" or (queued > 0 and "queued" or "idle")
  chat.set_status({ state = label, queued = running > 0 and queued or 0 })
end

-- "mcp 2/3" (connected of enabled), "mcp 2/3 1 failed" for the status line.
local function mcp_summary(servers)
  local enabled, connected, failed = 0, 0, 0
  for _, server in ipairs(servers) do
    if server.state ~= "disabled" then
      enabled = enabled + 1
    end
    connected = connected + (server.state == "connected" and 1 or 0)
    failed = failed + (server.state == "failed" and 1 or 0)
  end
  if enabled == 0 then
    return nil
  end
  local text = string.format("mcp %d/%d", connected, enabled)
  return failed > 0 and string.format("%s %d failed", text, failed) or text
end

local function set_mcp_servers(servers)
  state.mcp_servers = servers or {}
  chat.set_status({ mcp = mcp_summary(state.mcp_servers) })
end

-- One line per server: "time: connected (2 tools)", "docs: failed: <why>".
function M.mcp_lines(servers)
  local lines = {}
  for _, server in ipairs(servers or state.mcp_servers) do
    local line = string.format("%s (%s): %s", server.name, server.type, server.state)
    if server.state == "connected" then
      line = string.format("%s, %d tools", line, #server.tools)
    end
    if server.error and server.error ~= vim.NIL then
      line = line .. ": " .. server.error
    end
    table.insert(lines, line)
  end
  return lines
end

-- :CrushMcp: the servers and their state, asked from the server.
function M.mcp()
  client.request("agent/mcpServers", {}, function(err, result)
    if err then
      vim.notify("crush: " .. (err.message or "agent/mcpServers failed"), vim.log.levels.ERROR)
      return
    end
    set_mcp_servers(result.servers)
    local lines = M.mcp_lines(result.servers)
    vim.notify(#lines > 0 and table.concat(lines, "\n") or "crush: no MCP servers configured", vim.log.levels.INFO)
  end)
end

local function set_session_tokens(session)
  chat.set_status({
    input_tokens = session.promptTokens or 0,
    output_tokens = session.completionTokens or 0,
  })
end

-- ------------------------------------------------------------ conversation

local function assistant_entry(message_id, run_id)
  local entry = state.assistant_by_message[message_id]
  if entry then
    return entry
  end
  local last = chat.entries[#chat.entries]
  local continues = last and last.kind == "assistant" and last.run_id == run_id
  entry = chat.add({ kind = "assistant", message_id = message_id, run_id = run_id, header = not continues, parts = {} })
  state.assistant_by_message[message_id] = entry
  return entry
end

local function append_text(entry, kind, text)
  local last = entry.parts[#entry.parts]
  if last and last.type == kind then
    last.text = last.text .. text
  else
    table.insert(entry.parts, { type = kind, text = text })
  end
end

local function tool_part(entry, call)
  local part = state.tool_parts[call.id]
  if not part then
    part = { type = "tool", id = call.id, entry = entry }
    table.insert(entry.parts, part)
    state.tool_parts[call.id] = part
  end
  part.name = call.name or part.name
  part.input = call.input or part.input
  part.status = call.status or part.status
  return part
end

local function attach_result(result)
  local part = state.tool_parts[result.toolCallId]
  if not part then
    local last = chat.entries[#chat.entries]
    local entry = (last and last.kind == "assistant") and last or assistant_entry("tool:" .. result.toolCallId, nil)
    part = tool_part(entry, { id = result.toolCallId, name = result.name, status = "completed" })
  end
  part.result = { content = result.content, isError = result.isError, metadata = result.metadata }
  chat.update(part.entry)
end

local function user_text(message)
  local texts = {}
  for _, part in ipairs(message.parts or {}) do
    if part.type == "text" then
      table.insert(texts, part.text)
    end
  end
  return table.concat(texts, "\n")
end

-- A path as the chat shows it: relative to the workspace folder when inside it.
local function display_path(uri)
  local ok, path = pcall(vim.uri_to_fname, uri)
  if not ok then
    return uri
  end
  local root = client.workspace() and vim.uri_to_fname(client.workspace()) or client.root_dir()
  local relative = vim.fs.relpath and vim.fs.relpath(root, path)
  if relative then
    return relative
  end
  return vim.startswith(path, root .. "/") and path:sub(#root + 2) or path
end

-- The context parts of a stored user message, as the chat shows them.
local function user_context(message)
  local items = {}
  for _, part in ipairs(message.parts or {}) do
    if part.type == "context" then
      table.insert(items, { uri = part.uri, kind = part.kind, range = part.range ~= vim.NIL and part.range or nil,
        path = display_path(part.uri) })
    end
  end
  return items
end

-- Adds the parts of a stored assistant message (history, or message_created).
local function add_assistant_parts(entry, message)
  for _, part in ipairs(message.parts or {}) do
    if part.type == "text" or part.type == "reasoning" then
      append_text(entry, part.type, part.text)
    elseif part.type == "tool_call" then
      tool_part(entry, part)
    elseif part.type == "finish" and part.reason == "canceled" then
      entry.canceled = true
    end
  end
  chat.update(entry)
end

-- ----------------------------------------------------------- notifications

local on = {}

function on.run_queued(n)
  state.runs[n.runId] = "queued"
  local user = state.user_by_run[n.runId]
  if user then
    user.queued = true
    chat.update(user)
  end
end

function on.run_started(n)
  state.runs[n.runId] = "running"
  local user = state.user_by_run[n.runId]
  if user and user.queued then
    -- Shown where it was typed while it waited; its answer comes now.
    user.queued = false
    chat.move_to_end(user)
  end
end

function on.message_created(n)
  local message = n.message
  if message.role == "user" then
    local user = state.user_by_run[n.runId]
    if not user then
      user = chat.add({ kind = "user", text = user_text(message), run_id = n.runId, context = user_context(message) })
      state.user_by_run[n.runId] = user
    end
    user.message_id = message.id
  elseif message.role == "assistant" then
    local entry = assistant_entry(message.id, n.runId)
    if #entry.parts == 0 then -- what it holds already streamed in otherwise
      add_assistant_parts(entry, message)
    end
  end
  -- Tool messages arrive as tool_result notifications too.
end

function on.text_delta(n)
  local entry = assistant_entry(n.messageId, n.runId)
  append_text(entry, "text", n.text)
  chat.update(entry)
end

function on.reasoning_delta(n)
  local entry = assistant_entry(n.messageId, n.runId)
  append_text(entry, "reasoning", n.text)
  chat.update(entry)
end

function on.tool_call(n)
  local entry = assistant_entry(n.messageId, n.runId)
  local part = tool_part(entry, n.toolCall)
  chat.update(part.entry)
end

function on.tool_result(n)
  attach_result(n)
  if n.metadata and n.metadata.path and not n.isError then
    -- A file the agent changed: reload the buffers showing it ('autoread').
    vim.cmd("silent! checktime")
  end
end

function on.session_updated(n)
  set_session_tokens(n.session)
end

function on.agent_error(n)
  local suffix = n.willRetry and " (retrying)" or ""
  note(string.format("[error] %s: %s%s", n.code or "internal", n.message or "", suffix))
end

function on.mcp_updated(n)
  set_mcp_servers(n.servers)
end

function on.run_complete(n)
  local started = state.runs[n.runId] == "running"
  state.runs[n.runId] = nil
  if started or state.last_run_complete == nil then
    state.last_run_complete = n -- the last turn (:CrushChanges); a queued run dropped unstarted is none
  end
  local taken_back = state.taken_back[n.runId]
  state.taken_back[n.runId] = nil
  local shown = nil
  if taken_back then
    -- Its prompt is back in the prompt buffer: nothing ran, nothing to say.
  elseif n.finishReason == "canceled" and not n.foldedInto then
    shown = note("[canceled]")
  elseif n.finishReason == "max_tokens" then
    shown = note("[stopped: max tokens]")
  end
  state.completion_notes[n.runId] = shown
  vim.api.nvim_exec_autocmds("User", { pattern = "CrushRunComplete", data = n, modeline = false })
end

local function handle_notification(n)
  if n.sessionId and n.sessionId ~= state.session_id then
    return -- another session of the workspace
  end
  local handler = on[n.type]
  if handler then
    handler(n)
  end
  refresh_status()
  vim.api.nvim_exec_autocmds("User", { pattern = "CrushNotification", data = n, modeline = false })
end

-- --------------------------------------------------------------- sessions

local function reset_conversation(session_id)
  state.session_id = session_id
  state.runs = {}
  state.user_by_run = {}
  state.completion_notes = {}
  state.assistant_by_message = {}
  state.tool_parts = {}
  chat.clear()
  chat.set_status({ input_tokens = 0, output_tokens = 0 })
  refresh_status()
end

local creating = nil -- callbacks waiting for a session/create in flight

local function with_session(callback)
  if state.session_id then
    return callback(state.session_id)
  end
  if creating then
    return table.insert(creating, callback)
  end
  creating = { callback }
  client.request("session/create", {}, function(err, session)
    local callbacks = creating
    creating = nil
    if err then
      return error_note(err)
    end
    state.session_id = session.id
    for _, cb in ipairs(callbacks) do
      cb(session.id)
    end
  end)
end

-- Starts a new session and clears the chat; `callback(session)` when done.
function M.new_session(callback)
  client.request("session/create", {}, function(err, session)
    if err then
      return error_note(err)
    end
    reset_conversation(session.id)
    if callback then
      callback(session)
    end
  end)
end

local function show_history(messages)
  for _, message in ipairs(messages) do
    if message.role == "user" then
      chat.add({ kind = "user", text = user_text(message), context = user_context(message), message_id = message.id })
    elseif message.role == "assistant" then
      local entry = assistant_entry(message.id, nil)
      add_assistant_parts(entry, message)
      if entry.canceled then
        note("[canceled]")
      end
    else
      for _, part in ipairs(message.parts or {}) do
        if part.type == "tool_result" then
          attach_result(part)
        end
      end
    end
  end
end

-- Shows a stored session: its history, then whatever it is still running.
function M.load_session(session, callback)
  reset_conversation(session.id)
  set_session_tokens(session)
  client.request("session/messages", { sessionId = session.id }, function(err, result)
    if err then
      return error_note(err)
    end
    show_history(result.messages or {})
    client.request("agent/status", { sessionId = session.id }, function(status_err, status)
      if not status_err and status.activeRunId and status.activeRunId ~= vim.NIL then
        state.runs[status.activeRunId] = "running"
      end
      for _, run in ipairs((not status_err and status.queued) or {}) do
        state.runs[run.runId] = "queued"
      end
      refresh_status()
      chat.scroll_to_end()
      vim.api.nvim_exec_autocmds("User", { pattern = "CrushSessionLoaded", data = session, modeline = false })
      if callback then
        callback(session)
      end
    end)
  end)
end

local function session_label(session)
  local title = (session.title and session.title ~= "") and session.title or session.id
  local updated = (session.updatedAt or ""):sub(1, 16):gsub("T", " ")
  return string.format("%s  (%d messages, %s)", title, session.messageCount or 0, updated)
end

-- :CrushSessions: pick a session with vim.ui.select and load its history.
function M.sessions()
  client.request("session/list", {}, function(err, result)
    if err then
      return error_note(err)
    end
    local sessions = result.sessions or {}
    if #sessions == 0 then
      return vim.notify("crush: no sessions yet", vim.log.levels.INFO)
    end
    vim.ui.select(sessions, { prompt = "crush sessions", format_item = session_label, kind = "crush.session" },
      function(choice)
        if choice then
          M.load_session(choice)
        end
      end)
  end)
end

-- ---------------------------------------------------------------- context

-- The context of the next prompt: items as agent/sendMessage takes them
-- (protocol.md, "Editor context"), plus `path` for the chat and `buf`.
local function pending()
  return vim.deepcopy(chat.pending)
end

local function set_pending(items)
  chat.set_pending(items)
end

local function same_item(a, b)
  return a.kind == b.kind and a.uri == b.uri and vim.deep_equal(a.range, b.range)
end

-- Adds an item to the next prompt's context (once).
function M.add_context(item)
  item.path = item.path or display_path(item.uri)
  local items = pending()
  for _, existing in ipairs(items) do
    if same_item(existing, item) then
      return
    end
  end
  table.insert(items, item)
  set_pending(items)
end

-- Removes the items of `uri` (all kinds when `kind` is nil).
function M.remove_context(uri, kind)
  set_pending(vim.tbl_filter(function(item)
    return not (item.uri == uri and (kind == nil or item.kind == kind))
  end, pending()))
end

local function file_buffer(buf)
  buf = (buf == nil or buf == 0) and vim.api.nvim_get_current_buf() or buf
  if vim.bo[buf].buftype ~= "" or vim.api.nvim_buf_get_name(buf) == "" then
    return nil
  end
  return buf
end

-- :CrushAdd [file|diagnostics]: the current file, or its diagnostics (the
-- server asks them with agent/diagnostics), goes with the next prompt;
-- :CrushAdd! takes it out again.
function M.add_file(buf, remove, kind)
  kind = (kind == nil or kind == "") and "file" or kind
  if kind ~= "file" and kind ~= "diagnostics" then
    return vim.notify("crush: :CrushAdd takes file or diagnostics, not " .. kind, vim.log.levels.WARN)
  end
  buf = file_buffer(buf)
  if not buf then
    return vim.notify("crush: :CrushAdd needs a file buffer", vim.log.levels.WARN)
  end
  local uri = vim.uri_from_bufnr(buf)
  if remove then
    return M.remove_context(uri, kind)
  end
  M.add_context({ uri = uri, kind = kind, buf = buf })
end

-- A byte column of a line as an LSP character (the server's position encoding).
local function character(buf, row, col)
  local line = vim.api.nvim_buf_get_lines(buf, row, row + 1, false)[1] or ""
  local c = client.get()
  local encoding = c and c.offset_encoding or "utf-16"
  local ok, index = pcall(vim.str_utfindex, line, encoding, math.min(col, #line), false)
  return ok and index or math.min(col, #line)
end

-- The selection of lines `line1`..`line2` (1-based) of `buf`: characterwise
-- when it is the last visual selection made with `v`, whole lines otherwise.
function M.selection(buf, line1, line2)
  local start_pos, end_pos = vim.fn.getpos("'<"), vim.fn.getpos("'>")
  local last = vim.api.nvim_buf_get_lines(buf, line2 - 1, line2, false)[1] or ""
  local start_col, end_col = 0, #last -- bytes, end exclusive
  if vim.fn.visualmode() == "v" and start_pos[2] == line1 and end_pos[2] == line2 then
    start_col = start_pos[3] - 1
    local char_at_end = vim.fn.strpart(last, math.min(end_pos[3], #last) - 1, 1, true)
    end_col = math.min(end_pos[3] - 1 + #char_at_end, #last)
  end
  local text = vim.api.nvim_buf_get_text(buf, line1 - 1, start_col, line2 - 1, end_col, {})
  return {
    uri = vim.uri_from_bufnr(buf),
    kind = "selection",
    range = {
      start = { line = line1 - 1, character = character(buf, line1 - 1, start_col) },
      ["end"] = { line = line2 - 1, character = character(buf, line2 - 1, end_col) },
    },
    text = table.concat(text, "\n"),
  }
end

-- The items as agent/sendMessage takes them. A file open in a buffer that the
-- server does not mirror (outside the workspace) goes with its buffer's text.
local function wire_context(items)
  local wire = {}
  for _, item in ipairs(items) do
    local sent = { uri = item.uri, kind = item.kind, range = item.range, text = item.text }
    local buf = item.buf and vim.api.nvim_buf_is_loaded(item.buf) and item.buf
    if item.kind == "file" and buf and not vim.lsp.buf_is_attached(buf, client.client_id or -1) then
      sent.text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n") .. "\n"
    end
    table.insert(wire, sent)
  end
  return wire
end

-- ------------------------------------------------------------------- runs

-- Sends a prompt to the current session (made on first use), with the pending
-- context (or `opts.context`); returns its runId.
function M.send(text, opts)
  if type(text) ~= "string" or vim.trim(text) == "" then
    vim.notify("crush: the prompt is empty", vim.log.levels.WARN)
    return nil
  end
  local items = (opts and opts.context) or pending()
  if not (opts and opts.context) then
    set_pending({})
  end
  local run_id = new_run_id()
  state.user_by_run[run_id] = chat.add({ kind = "user", text = text, run_id = run_id, context = items })
  with_session(function(session_id)
    local params = { sessionId = session_id, prompt = text, runId = run_id }
    if #items > 0 then
      params.context = wire_context(items)
    end
    client.request("agent/sendMessage", params, function(err, result)
      if err then
        if err.data and err.data.reason == "session_not_found" and state.session_id == session_id then
          state.session_id = nil -- deleted elsewhere: the next prompt starts a new session
        end
        return error_note(err)
      end
      -- The response comes before the run's notifications (PROTOCOL.md section 2).
      state.runs[run_id] = state.runs[run_id] or (result.queued and "queued" or "running")
      local user = state.user_by_run[run_id]
      if result.queued and user and not user.queued and state.runs[run_id] == "queued" then
        user.queued = true
        chat.update(user)
      end
      refresh_status()
    end)
  end)
  return run_id
end

-- A queued run taken back: its prompt leaves the chat, its run_complete says nothing.
function M.forget_run(run_id)
  if state.runs[run_id] then
    state.taken_back[run_id] = true -- its run_complete is still to come
  end
  if state.user_by_run[run_id] then
    chat.remove(state.user_by_run[run_id])
  end
  if state.completion_notes[run_id] then
    chat.remove(state.completion_notes[run_id])
  end
  state.user_by_run[run_id] = nil
  state.completion_notes[run_id] = nil
  refresh_status()
end

-- Cancels the current session's active and queued runs.
function M.cancel()
  if not state.session_id then
    return
  end
  client.request("agent/cancel", { sessionId = state.session_id })
end

function M.open()
  chat.open()
  client.start()
end

-- The chat buffer's lines, and the status line text: for scripts and tests.
function M.chat_lines()
  return chat.lines()
end

function M.status()
  return chat.statusline()
end

-- ------------------------------------------------------------------ setup

local function on_ready()
  client.request("agent/models", {}, function(err, result)
    local current = not err and result and result.current
    if current then
      chat.set_status({ model = current.name or current.model })
    end
  end)
  client.request("agent/mcpServers", {}, function(err, result)
    if not err and result then
      set_mcp_servers(result.servers)
    end
  end)
end

local function on_exit(info)
  state.runs = {}
  chat.set_status({ state = "stopped", queued = 0 })
  if info.code ~= 0 then
    note(string.format("[crush-ls exited with code %s]", tostring(info.code)))
  end
end

function M.create_commands()
  local command = vim.api.nvim_create_user_command
  command("CrushChat", function(args)
    if args.range > 0 then
      local buf = file_buffer(0)
      if buf then
        M.add_context(M.selection(buf, args.line1, args.line2))
      end
    end
    M.open()
  end, { range = true, desc = "Open the crush chat (from a selection: the selection goes with the next prompt)" })
  command("CrushAdd", function(args) M.add_file(0, args.bang, args.args) end, {
    bang = true,
    nargs = "?",
    complete = function() return { "file", "diagnostics" } end,
    desc = "The current file (or its diagnostics) goes with the next crush prompt (! takes it out)",
  })
  command("CrushCancel", M.cancel, { desc = "Cancel the running crush prompt" })
  command("CrushNew", function() M.new_session() end, { desc = "Start a new crush session" })
  command("CrushSessions", M.sessions, { desc = "Pick a crush session" })
  command("CrushSend", function(args) M.send(args.args) end, { nargs = "+", desc = "Send a prompt to crush" })
  command("CrushInstall", function(args)
    M.install({ wait = args.bang, package = args.args ~= "" and args.args or nil })
  end, { nargs = "?", bang = true, desc = "Install crush-ls into a venv (! waits: for lazy.nvim's build)" })
  command("CrushMcp", M.mcp, { desc = "Show the MCP servers of the workspace and their state" })
  local review = require("crush.review")
  command("CrushChanges", function() review.changes() end, { desc = "The files the last crush turn changed (quickfix)" })
  command("CrushDiff", function(args) review.open_diff(args.args) end,
    { nargs = "?", complete = "file", desc = "Diff a file the agent changed: before (left) against the buffer" })
  command("CrushAccept", function() review.review("accept") end, { desc = "Accept the crush hunk under the cursor" })
  command("CrushReject", function() review.review("reject") end, { desc = "Reject (revert) the crush hunk under the cursor" })
  command("CrushRewind", function(args) review.rewind(args.bang) end,
    { bang = true, desc = "Rewind the session to before the user message under the cursor (! also overwrites hand edits)" })
  command("CrushUnrewind", function(args) review.unrewind(args.bang) end, { bang = true, desc = "Undo the last rewind" })
  command("CrushTakeBack", function() review.take_back() end, { desc = "Take the last queued prompt back into the prompt" })
end

-- :CrushInstall: crush-ls into stdpath("data")/crush-ls/venv; the next start uses it.
function M.install(opts)
  require("crush.install").install(opts)
end

function M.setup(opts)
  config.set(opts)
  client.on_notification = handle_notification
  client.on_ready = on_ready
  client.on_exit = on_exit
  M.create_commands()
  return M
end

-- Defaults work without setup(): `crush-ls` on $PATH.
client.on_notification = handle_notification
client.on_ready = on_ready
client.on_exit = on_exit

return M

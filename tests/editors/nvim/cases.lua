-- Test cases run inside a real Neovim by init.lua; each returns a table that
-- tests/editors/test_nvim.py asserts on. They wait on the plugin's events
-- (User CrushRunComplete / CrushNotification / CrushSessionLoaded), never on sleeps.
local crush = require("crush")

local TIMEOUT_MS = tonumber(vim.env.CRUSH_NVIM_TIMEOUT_MS or "20000")
local args = vim.json.decode(vim.env.CRUSH_NVIM_ARGS or "{}")

local completed = {} -- runId -> run_complete params
local notifications = {}
local loaded_sessions = {}

vim.api.nvim_create_autocmd("User", {
  pattern = "CrushRunComplete",
  callback = function(ev) completed[ev.data.runId] = ev.data end,
})
vim.api.nvim_create_autocmd("User", {
  pattern = "CrushNotification",
  callback = function(ev) table.insert(notifications, ev.data) end,
})
vim.api.nvim_create_autocmd("User", {
  pattern = "CrushSessionLoaded",
  callback = function(ev) table.insert(loaded_sessions, ev.data.id) end,
})

local function wait_for(what, predicate)
  if not vim.wait(TIMEOUT_MS, predicate, 10) then
    error(string.format("timed out waiting for %s; chat:\n%s", what, table.concat(crush.chat_lines(), "\n")))
  end
end

local function wait_complete(run_id)
  wait_for("run_complete of " .. tostring(run_id), function() return completed[run_id] ~= nil end)
  return completed[run_id]
end

local function count(type_name)
  local n = 0
  for _, item in ipairs(notifications) do
    if item.type == type_name then
      n = n + 1
    end
  end
  return n
end

-- vim.ui.select answered by the test: `answer(items, opts)` picks the item.
local function stub_select(answer, asynchronous)
  local calls = {}
  vim.ui.select = function(items, opts, on_choice)
    local labels = {}
    for _, item in ipairs(items) do
      table.insert(labels, opts.format_item and opts.format_item(item) or item)
    end
    table.insert(calls, { items = labels, prompt = opts.prompt, kind = opts.kind })
    local choice = answer(items, opts)
    if asynchronous then
      vim.schedule(function() on_choice(choice) end)
    else
      on_choice(choice)
    end
  end
  return calls
end

local cases = {}

function cases.send()
  local run_id = crush.send(args.prompt or "hello")
  local done = wait_complete(run_id)
  local models = require("crush.client").request_sync("agent/models", {}, TIMEOUT_MS)
  return {
    lines = crush.chat_lines(),
    status = crush.status(),
    model = models.current,
    run_complete = done,
    buffer_name = vim.api.nvim_buf_get_name(vim.fn.bufnr("crush://chat")),
  }
end

-- A prompt the server refuses: the chat says why.
function cases.send_refused()
  crush.send(args.prompt or "hello")
  wait_for("an error line", function()
    return vim.iter(crush.chat_lines()):any(function(line) return vim.startswith(line, "[error]") end)
  end)
  return { lines = crush.chat_lines(), status = crush.status() }
end

function cases.cancel()
  local run_id = crush.send(args.prompt or "count slowly")
  wait_for("two text deltas", function() return count("text_delta") >= 2 end)
  vim.cmd("CrushCancel")
  local done = wait_complete(run_id)
  return { lines = crush.chat_lines(), run_complete = done, status = crush.status(), deltas = count("text_delta") }
end

function cases.permission()
  local calls = stub_select(function() return args.choice end, args.asynchronous)
  local run_id = crush.send(args.prompt or "read the hostname")
  local done = wait_complete(run_id)
  local resolved = {}
  for _, item in ipairs(notifications) do
    if item.type == "permission_resolved" then
      table.insert(resolved, item.decision)
    end
  end
  return { lines = crush.chat_lines(), run_complete = done, select_calls = calls, resolved = resolved }
end

function cases.sessions()
  local first_run = crush.send("first question")
  wait_complete(first_run)
  local first_session = crush.state.session_id
  local first_lines = crush.chat_lines()

  local created = nil
  vim.cmd("CrushNew")
  wait_for("a new session", function()
    return crush.state.session_id ~= first_session and crush.state.session_id ~= nil
  end)
  created = crush.state.session_id
  local after_new = crush.chat_lines()
  wait_complete(crush.send("second question"))

  local calls = stub_select(function(items)
    for _, session in ipairs(items) do
      if session.id == first_session then
        return session
      end
    end
  end)
  vim.cmd("CrushSessions")
  wait_for("the first session's history", function() return #loaded_sessions > 0 end)
  return {
    first_lines = first_lines,
    after_new = after_new,
    reloaded = crush.chat_lines(),
    select_calls = calls,
    first_session = first_session,
    second_session = created,
    current_session = crush.state.session_id,
  }
end

-- A run with tool calls, then the same session loaded from history.
function cases.reload_matches_live()
  local live_run = crush.send(args.prompt or "edit please")
  local done = wait_complete(live_run)
  local session_id = crush.state.session_id
  local live = crush.chat_lines()
  crush.new_session()
  wait_for("a new session", function() return crush.state.session_id ~= session_id end)
  stub_select(function(items)
    return vim.iter(items):find(function(session) return session.id == session_id end)
  end)
  vim.cmd("CrushSessions")
  wait_for("the history", function() return #loaded_sessions > 0 end)
  return { live = live, reloaded = crush.chat_lines(), run_complete = done }
end

-- The user's path: :CrushChat, type into the prompt buffer, <CR> in normal mode.
function cases.chat_ui()
  vim.cmd("CrushChat")
  local prompt_win = vim.api.nvim_get_current_win()
  local prompt_buf = vim.api.nvim_win_get_buf(prompt_win)
  vim.cmd("stopinsert")
  vim.api.nvim_buf_set_lines(prompt_buf, 0, -1, false, { args.prompt or "typed prompt" })
  vim.api.nvim_feedkeys(vim.keycode("<CR>"), "mx", false)
  wait_for("a run_complete", function() return next(completed) ~= nil end)
  local windows = {}
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    table.insert(windows, vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win)))
  end
  local chat_win = vim.fn.bufwinid("crush://chat")
  return {
    windows = windows,
    prompt_name = vim.api.nvim_buf_get_name(prompt_buf),
    prompt_lines = vim.api.nvim_buf_get_lines(prompt_buf, 0, -1, false),
    lines = crush.chat_lines(),
    statusline = vim.api.nvim_eval_statusline(vim.wo[chat_win].statusline, { winid = chat_win }).str,
  }
end

-- A write in the chat window: its diff is shown folded under the tool call.
function cases.diff_folded()
  stub_select(function() return "Allow" end)
  vim.cmd("CrushChat")
  vim.cmd("stopinsert")
  local run_id = crush.send(args.prompt or "add a docstring")
  local done = wait_complete(run_id)
  local chat_win = vim.fn.bufwinid("crush://chat")
  local folded = vim.api.nvim_win_call(chat_win, function()
    local closed = {}
    for lnum = 1, vim.api.nvim_buf_line_count(0) do
      table.insert(closed, vim.fn.foldclosed(lnum) ~= -1)
    end
    return closed
  end)
  return { lines = crush.chat_lines(), folded = folded, run_complete = done }
end

-- A second prompt waits behind the first: shown queued, then answered in order.
function cases.queue()
  local first = crush.send("first slow prompt")
  local second = crush.send("second prompt")
  wait_for("run_queued", function() return count("run_queued") > 0 end)
  local while_queued = { lines = crush.chat_lines(), status = crush.status() }
  wait_complete(first)
  wait_complete(second)
  return { while_queued = while_queued, lines = crush.chat_lines(), status = crush.status() }
end

-- The MCP servers once none is starting any more: the status line and :CrushMcp's lines.
function cases.mcp()
  crush.open()
  wait_for("the MCP servers to connect or fail", function()
    local servers = crush.state.mcp_servers
    for _, server in ipairs(servers) do
      if server.state == "starting" then
        return false
      end
    end
    return #servers == args.servers
  end)
  return { statusline = crush.status(), lines = crush.mcp_lines() }
end

function cases.health()
  vim.cmd("checkhealth crush")
  return { lines = vim.api.nvim_buf_get_lines(0, 0, -1, false) }
end

-- vim.notify recorded (and still shown): { msg, level } in order.
local function record_notify()
  local seen = {}
  local original = vim.notify
  vim.notify = function(msg, level, opts)
    table.insert(seen, { msg = msg, level = level })
    return original(msg, level, opts)
  end
  return seen
end

-- A server that exits before `initialize` is answered: one error naming it, after its exit.
function cases.start_failure()
  local notes = record_notify()
  local exited = false
  vim.api.nvim_create_autocmd("User", { pattern = "CrushServerExit", once = true, callback = function() exited = true end })
  crush.send("hello")
  wait_for("the server's exit", function() return exited end)
  return { notes = notes, lines = crush.chat_lines() }
end

-- A command that does not exist: one error with the fix, no exit to wait for.
function cases.start_failure_missing()
  local notes = record_notify()
  crush.send("hello")
  return { notes = notes }
end

-- :CrushInstall, waited for: the CrushInstalled data and what vim.notify said.
local function install(timeout_ms)
  local notes = record_notify()
  local installed
  vim.api.nvim_create_autocmd("User", { pattern = "CrushInstalled", once = true, callback = function(ev) installed = ev.data end })
  vim.cmd("CrushInstall")
  if not vim.wait(timeout_ms or TIMEOUT_MS, function() return installed ~= nil end, 50) then
    error("timed out waiting for :CrushInstall")
  end
  return installed, notes
end

-- :CrushInstall that cannot succeed.
function cases.install_fails()
  local installed, notes = install()
  return { installed = installed, notes = notes }
end

-- :CrushInstall (from $CRUSH_NVIM_INSTALL_PACKAGE), then a prompt through the installed server.
function cases.install()
  local installed, notes = install(tonumber(args.install_timeout_ms))
  if not installed.ok then
    error(installed.detail)
  end
  vim.cmd("CrushChat")
  local run_id = crush.send("hello after install")
  local done = wait_complete(run_id)
  return {
    installed = installed,
    cmd = require("crush.config").cmd(),
    server = require("crush.client").get().config.cmd,
    run_complete = done,
    lines = crush.chat_lines(),
    notes = notes,
  }
end

local function buffer_state(buf)
  return {
    lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false),
    modified = vim.bo[buf].modified,
  }
end

local function tool_results()
  local results = {}
  for _, item in ipairs(notifications) do
    if item.type == "tool_result" then
      table.insert(results, { name = item.name, content = item.content, isError = item.isError })
    end
  end
  return results
end

-- An open file (with unsaved text when args.unsaved) edited by the agent: what
-- the tools saw, the buffer and disk after the run, then after one `u`.
function cases.agent_edit_undo()
  vim.cmd.edit(args.file)
  local buf = vim.api.nvim_get_current_buf()
  if args.unsaved then
    vim.api.nvim_buf_set_lines(buf, args.unsaved.line, args.unsaved.line + 1, false, { args.unsaved.text })
    vim.o.undolevels = vim.o.undolevels -- ends the undo block, as the person's typing would (:help undo-break)
  end
  local saves = {}
  local buffers = require("crush.buffers")
  local save = buffers.save_document
  buffers.save_document = function(err, params, ctx)
    local answer = save(err, params, ctx)
    table.insert(saves, { uri = params.uri, saved = answer.saved })
    return answer
  end
  local run_id = crush.send(args.prompt or "edit the file")
  local done = wait_complete(run_id)
  local after = buffer_state(buf)
  local attached = #vim.lsp.get_clients({ bufnr = buf, name = "crush" }) == 1
  vim.cmd("normal! u")
  return {
    run_complete = done,
    tools = tool_results(),
    attached = attached,
    after = after,
    undone = buffer_state(buf),
    saves = saves,
    uri = vim.uri_from_bufnr(buf),
  }
end

-- :CrushAdd of two files (one taken out again with `x` in the chat), then a
-- selection (args.keys, in normal mode) with :'<,'>CrushChat, then a prompt.
function cases.context()
  vim.cmd.edit(args.other)
  vim.cmd("CrushAdd")
  vim.cmd.edit(args.removed)
  vim.cmd("CrushAdd")
  vim.cmd.edit(args.file)
  vim.cmd("CrushAdd")
  vim.cmd("CrushAdd!") -- and out again
  local ns = vim.api.nvim_create_namespace("test.lint")
  vim.diagnostic.set(ns, 0, { { lnum = 3, col = 8, message = "total is shadowed", severity = 2, source = "lint" } })
  vim.cmd("CrushAdd diagnostics")
  vim.cmd("normal! " .. args.keys .. "\27")
  vim.cmd("'<,'>CrushChat")
  vim.cmd("stopinsert")
  local before_removal = crush.chat_lines()
  local chat_win = vim.fn.bufwinid("crush://chat")
  vim.api.nvim_set_current_win(chat_win)
  local line = vim.fn.index(before_removal, "- file " .. args.removed) + 1
  vim.api.nvim_win_set_cursor(chat_win, { line, 0 })
  vim.api.nvim_feedkeys("x", "mx", false)
  local pending = crush.chat_lines()
  local sent = nil -- agent/sendMessage's context as the plugin puts it on the wire
  local crush_client = require("crush.client")
  local request = crush_client.request
  crush_client.request = function(method, params, callback)
    if method == "agent/sendMessage" then
      sent = params.context
    end
    return request(method, params, callback)
  end
  local run_id = crush.send(args.prompt or "explain this")
  local done = wait_complete(run_id)
  local messages = require("crush.client").request_sync("session/messages", { sessionId = crush.state.session_id }, TIMEOUT_MS)
  local parts = {}
  for _, part in ipairs(messages.messages[1].parts) do
    if part.type == "context" then
      table.insert(parts, part)
    end
  end
  local live = crush.chat_lines()
  crush.load_session({ id = crush.state.session_id })
  wait_for("the history", function() return #loaded_sessions > 0 end)
  return { before_removal = before_removal, pending = pending, lines = live, run_complete = done,
    reloaded = crush.chat_lines(), context_parts = parts, sent = sent, uri = vim.uri_from_fname(vim.fn.fnamemodify(args.file, ":p")) }
end

local function wait_event(pattern)
  local data = nil
  vim.api.nvim_create_autocmd("User", { pattern = pattern, once = true, callback = function(ev) data = ev.data or {} end })
  return function()
    wait_for("User " .. pattern, function() return data ~= nil end)
    return data
  end
end

-- The lines `]c` stops at from the top of the current (diff) window.
local function hunk_stops()
  local stops = {}
  vim.cmd("normal! gg")
  for _ = 1, 10 do
    local before = vim.fn.line(".")
    vim.cmd("silent! normal! ]c")
    if vim.fn.line(".") == before then
      break
    end
    table.insert(stops, vim.fn.line("."))
  end
  return stops
end

-- A turn that changed an open file: :CrushChanges, :CrushDiff, :CrushReject on
-- the hunk at args.reject_line, then :CrushAccept on the one at args.accept_line.
function cases.review()
  vim.cmd.edit(args.file)
  local buf = vim.api.nvim_get_current_buf()
  wait_complete(crush.send(args.prompt or "change two lines"))
  local changes = wait_event("CrushChanges")
  vim.cmd("CrushChanges")
  changes()
  local quickfix = vim.fn.getqflist({ title = true, items = true })
  local items = vim.tbl_map(function(item)
    return { file = vim.api.nvim_buf_get_name(item.bufnr), lnum = item.lnum, text = item.text }
  end, quickfix.items)
  vim.cmd("wincmd p") -- back from the quickfix window
  local diffed = wait_event("CrushDiff")
  vim.cmd("CrushDiff " .. args.file)
  diffed()
  local review = require("crush.review")
  local before_lines = vim.api.nvim_buf_get_lines(review.diff.before_buf, 0, -1, false)
  local windows = {}
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.wo[win].diff then
      table.insert(windows, vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(win)))
    end
  end
  local on_file = vim.api.nvim_get_current_buf() == buf
  local stops = hunk_stops()

  vim.api.nvim_win_set_cursor(0, { args.reject_line, 0 })
  local reviewed = wait_event("CrushReviewed")
  vim.cmd("CrushReject")
  local rejected = reviewed()
  local after_reject = { lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false), modified = vim.bo[buf].modified,
    stops = hunk_stops(), statuses = vim.tbl_map(function(h) return h.status end, rejected.change.hunks) }

  vim.api.nvim_win_set_cursor(0, { args.accept_line, 0 })
  reviewed = wait_event("CrushReviewed")
  vim.cmd("CrushAccept")
  local accepted = reviewed()
  local after_accept = { lines = vim.api.nvim_buf_get_lines(buf, 0, -1, false), stops = hunk_stops(),
    before = vim.api.nvim_buf_get_lines(review.diff.before_buf, 0, -1, false),
    statuses = vim.tbl_map(function(h) return h.status end, accepted.change.hunks) }
  vim.cmd("normal! u")
  local undone = vim.api.nvim_buf_get_lines(buf, 0, -1, false)
  vim.cmd("normal! u")
  return {
    undone_twice = vim.api.nvim_buf_get_lines(buf, 0, -1, false),
    quickfix = { title = quickfix.title, items = items }, windows = windows, on_file = on_file,
    before_lines = before_lines, stops = stops, after_reject = after_reject, after_accept = after_accept,
    undone = undone,
  }
end

-- Two prompts, then :CrushRewind on the second one's "## You" (confirmed), then :CrushUnrewind.
function cases.rewind()
  local calls = stub_select(function(items) return items[1] end)
  wait_complete(crush.send(args.first))
  wait_complete(crush.send(args.second))
  local before = crush.chat_lines()
  vim.cmd("CrushChat")
  vim.cmd("stopinsert")
  local chat_win = vim.fn.bufwinid("crush://chat")
  vim.api.nvim_set_current_win(chat_win)
  vim.api.nvim_win_set_cursor(chat_win, { vim.fn.index(before, args.second) + 1, 0 })
  local rewound = wait_event("CrushRewound")
  vim.cmd("CrushRewind")
  local result = rewound()
  local after = { lines = crush.chat_lines(),
    prompt = vim.api.nvim_buf_get_lines(vim.fn.bufnr("crush://prompt"), 0, -1, false),
    prompt_focused = vim.api.nvim_get_current_buf() == vim.fn.bufnr("crush://prompt") }
  local unrewound = wait_event("CrushUnrewound")
  vim.cmd("CrushUnrewind")
  local unresult = unrewound()
  return { before = before, select_calls = calls, rewound = result, after = after, unrewound = unresult,
    after_unrewind = crush.chat_lines() }
end

-- A prompt queued behind a slow one, taken back with :CrushTakeBack.
function cases.take_back()
  local first = crush.send("first slow prompt")
  local second = crush.send("second prompt")
  wait_for("run_queued", function() return count("run_queued") > 0 end)
  local taken = wait_event("CrushTakenBack")
  vim.cmd("CrushTakeBack")
  local result = taken()
  local after = crush.chat_lines()
  wait_complete(second)
  wait_complete(first)
  return { taken = result, second = second, after = after, lines = crush.chat_lines(), status = crush.status(),
    prompt = vim.api.nvim_buf_get_lines(vim.fn.bufnr("crush://prompt"), 0, -1, false) }
end

-- follow_agent: the chat open and focused, the agent edits args.file (not open).
function cases.follow()
  require("crush.config").options.follow_agent = true
  vim.cmd.edit(args.open)
  local file_win = vim.api.nvim_get_current_win()
  vim.cmd("CrushChat")
  vim.cmd("stopinsert")
  local prompt_win = vim.api.nvim_get_current_win()
  local shown = false
  local buffers = require("crush.buffers")
  local show = buffers.show_document
  buffers.show_document = function(...)
    local answer = show(...)
    shown = true
    return answer
  end
  local done = wait_complete(crush.send(args.prompt or "edit the other file"))
  wait_for("window/showDocument", function() return shown end)
  return {
    run_complete = done,
    file_window_shows = vim.api.nvim_buf_get_name(vim.api.nvim_win_get_buf(file_win)),
    cursor = vim.api.nvim_win_get_cursor(file_win),
    focus_kept = vim.api.nvim_get_current_win() == prompt_win,
    windows = #vim.api.nvim_tabpage_list_wins(0),
  }
end

-- Diagnostics of two buffers (set by a "linter" namespace, byte columns), then a
-- run whose model calls the diagnostics tool for the workspace and for args.file.
function cases.diagnostics()
  local ns = vim.api.nvim_create_namespace("test.lint")
  for _, item in ipairs(args.diagnostics) do
    vim.cmd.edit(item.file)
    local buf = vim.api.nvim_get_current_buf()
    local line = vim.api.nvim_buf_get_lines(buf, item.lnum, item.lnum + 1, false)[1]
    local col = assert(line:find(item.at, 1, true)) - 1
    vim.diagnostic.set(ns, buf, { { lnum = item.lnum, col = col, end_col = col + #item.at, message = item.message,
      severity = item.severity, source = "lint", code = item.code } })
  end
  local done = wait_complete(crush.send(args.prompt or "check the diagnostics"))
  return { run_complete = done, tools = tool_results() }
end

return cases

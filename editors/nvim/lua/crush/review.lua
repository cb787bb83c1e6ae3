-- Review and rewind (protocol.md: agent/changes, agent/review, agent/rewind,
-- agent/unrewind, agent/popQueue):
--   :CrushChanges        the files of the last turn in the quickfix list
--   :CrushDiff [path]    the file's state before the agent (left) against its buffer (right)
--   :CrushAccept / :CrushReject   the hunk under the cursor in that diff
--   :CrushRewind[!]      back to before the user message under the cursor in the chat
--   :CrushUnrewind[!]    undoes the last rewind
--   :CrushTakeBack       the last queued prompt back into the prompt buffer
local client = require("crush.client")
local chat = require("crush.chat")

local M = {
  diff = nil, -- the open :CrushDiff: { change, file_buf, before_buf, file_win, before_win }
}

local function crush()
  return require("crush")
end

local function notify(text, level)
  vim.notify("crush: " .. text, level or vim.log.levels.INFO)
end

local function failed(err)
  local reason = err.data and err.data.reason
  notify((reason and (reason .. ": ") or "") .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
end

-- Calls `callback(session_id)` when there is a session, else says so.
local function with_session(callback)
  local session_id = crush().state.session_id
  if not session_id then
    return notify("no session yet", vim.log.levels.WARN)
  end
  callback(session_id)
end

local function fire(pattern, data)
  vim.api.nvim_exec_autocmds("User", { pattern = pattern, data = data, modeline = false })
end

-- ---------------------------------------------------------------- changes

local function first_line(change)
  local hunk = change.hunks and change.hunks[1]
  return hunk and math.max(hunk.newStart, 1) or 1
end

local function summary(change)
  local text = string.format("%s +%d -%d", change.status, change.additions or 0, change.removals or 0)
  if change.binary then
    text = text .. " (binary)"
  elseif change.tooLarge then
    text = text .. " (too large to show)"
  end
  local pending = 0
  for _, hunk in ipairs(change.hunks or {}) do
    pending = pending + (hunk.status == "pending" and 1 or 0)
  end
  if change.hunks and #change.hunks > 0 then
    text = string.format("%s, %d of %d hunks to review", text, pending, #change.hunks)
  end
  return text
end

-- The quickfix items of agent/changes' files (the change is each item's user_data).
function M.quickfix_items(files)
  local items = {}
  for _, change in ipairs(files) do
    table.insert(items, {
      filename = vim.uri_to_fname(change.uri),
      lnum = first_line(change),
      col = 1,
      text = summary(change),
      user_data = { crush_path = change.path },
    })
  end
  return items
end

-- :CrushChanges: the files the last turn changed (the whole session before any turn of it ran here).
function M.changes(callback)
  with_session(function(session_id)
    local last = crush().state.last_run_complete
    local params = { sessionId = session_id }
    if last and last.sessionId == session_id then
      params.runId = last.runId
    end
    client.request("agent/changes", params, function(err, result)
      if err then
        return failed(err)
      end
      local title = params.runId and "crush: files changed by the last turn" or "crush: files changed in this session"
      vim.fn.setqflist({}, " ", { title = title, items = M.quickfix_items(result.files) })
      if #result.files == 0 then
        notify(params.runId and "the last turn changed no files" or "this session changed no files")
      else
        vim.cmd("botright copen")
      end
      fire("CrushChanges", result)
      if callback then
        callback(result)
      end
    end)
  end)
end

-- ------------------------------------------------------------------- diff

-- The before text with the accepted hunks applied: the diff against the buffer
-- then shows only what is still to be reviewed (rejected hunks are gone from the file).
function M.baseline(change)
  local lines = change.before and vim.split(change.before, "\n", { plain = true }) or {}
  if lines[#lines] == "" then
    table.remove(lines) -- the text's last line end
  end
  for i = #(change.hunks or {}), 1, -1 do
    local hunk = change.hunks[i]
    if hunk.status == "accepted" then
      local new = {}
      for _, line in ipairs(hunk.lines) do
        if line:sub(1, 1) ~= "-" then
          table.insert(new, line:sub(2))
        end
      end
      local first = hunk.oldLines == 0 and hunk.oldStart or hunk.oldStart - 1
      for _ = 1, hunk.oldLines do
        table.remove(lines, first + 1)
      end
      for j = #new, 1, -1 do
        table.insert(lines, first + 1, new[j])
      end
    end
  end
  return lines
end

local function before_buffer(change)
  local name = "crush://before/" .. change.path
  local buf = vim.fn.bufnr(name, false)
  if buf == -1 or vim.fn.bufname(buf) ~= name then
    buf = vim.api.nvim_create_buf(false, true)
    vim.api.nvim_buf_set_name(buf, name)
  end
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "wipe"
  vim.bo[buf].swapfile = false
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, M.baseline(change))
  vim.bo[buf].modifiable = false
  return buf
end

-- A window for the file that is not the chat, the prompt or the quickfix list.
local function file_window()
  local current = vim.api.nvim_get_current_win()
  if vim.bo[vim.api.nvim_win_get_buf(current)].buftype == "" then
    return current
  end
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_config(win).relative == "" and vim.bo[vim.api.nvim_win_get_buf(win)].buftype == "" then
      return win
    end
  end
  vim.cmd("topleft vnew")
  return vim.api.nvim_get_current_win()
end

local function close_diff()
  local diff = M.diff
  M.diff = nil
  if not diff then
    return
  end
  if vim.api.nvim_win_is_valid(diff.file_win) then
    vim.api.nvim_win_call(diff.file_win, function() vim.cmd("diffoff") end)
  end
  if vim.api.nvim_buf_is_valid(diff.before_buf) then
    vim.api.nvim_buf_delete(diff.before_buf, { force = true })
  end
end

local function show_diff(change)
  close_diff()
  local win = file_window()
  vim.api.nvim_set_current_win(win)
  -- A loaded buffer is shown as it is: `:edit` would reload it, one more undo step.
  local file_buf = require("crush.buffers").buffer_of(change.uri)
  if file_buf then
    vim.api.nvim_win_set_buf(win, file_buf)
  else
    vim.cmd.edit(vim.fn.fnameescape(vim.uri_to_fname(change.uri)))
    file_buf = vim.api.nvim_get_current_buf()
  end
  local filetype = vim.bo[file_buf].filetype
  vim.cmd("diffthis")
  vim.cmd("leftabove vsplit")
  local before_win = vim.api.nvim_get_current_win()
  local before_buf = before_buffer(change)
  vim.api.nvim_win_set_buf(before_win, before_buf)
  vim.bo[before_buf].filetype = filetype
  vim.cmd("diffthis")
  vim.api.nvim_set_current_win(win)
  M.diff = { change = change, file_buf = file_buf, before_buf = before_buf, file_win = win, before_win = before_win }
  vim.api.nvim_create_autocmd("BufWipeout", { buffer = before_buf, once = true, callback = function()
    if M.diff and M.diff.before_buf == before_buf then
      M.diff = nil
    end
  end })
  vim.cmd("normal! gg")
  local hunk = change.hunks and change.hunks[1]
  if hunk then
    pcall(vim.api.nvim_win_set_cursor, win, { math.max(hunk.newStart, 1), 0 })
  end
  fire("CrushDiff", { path = change.path })
end

-- The session's change of `path` (relative, or absolute inside the workspace).
local function find_change(files, path)
  local absolute = vim.fs.normalize(vim.fn.fnamemodify(path, ":p"))
  for _, change in ipairs(files) do
    if change.path == path or vim.fs.normalize(vim.uri_to_fname(change.uri)) == absolute then
      return change
    end
  end
end

-- Asks agent/changes (the whole session: reviews are over it) for one file.
local function fetch_change(session_id, path, callback)
  client.request("agent/changes", { sessionId = session_id }, function(err, result)
    if err then
      return failed(err)
    end
    local change = find_change(result.files, path)
    if not change then
      return notify(path .. " has no changes of the agent in this session", vim.log.levels.WARN)
    end
    callback(change)
  end)
end

-- The path :CrushDiff means without an argument: the quickfix entry under the
-- cursor in the quickfix window, else the current file.
local function default_path()
  if vim.bo.buftype == "quickfix" then
    local item = vim.fn.getqflist()[vim.fn.line(".")]
    return item and item.bufnr > 0 and vim.api.nvim_buf_get_name(item.bufnr) or nil
  end
  local diff = M.diff
  if diff and vim.api.nvim_get_current_buf() == diff.before_buf then
    return diff.change.path
  end
  local name = vim.api.nvim_buf_get_name(0)
  return name ~= "" and vim.bo.buftype == "" and name or nil
end

-- :CrushDiff [path]
function M.open_diff(path)
  path = (path and path ~= "") and path or default_path()
  if not path then
    return notify(":CrushDiff needs a file: :CrushDiff path", vim.log.levels.WARN)
  end
  with_session(function(session_id)
    fetch_change(session_id, path, function(change)
      if change.binary or change.tooLarge then
        return notify(change.path .. " is " .. (change.binary and "binary" or "too large") .. ": no diff to show",
          vim.log.levels.WARN)
      end
      show_diff(change)
    end)
  end)
end

-- The pending hunk under the cursor: the one whose lines hold it (new lines in
-- the file's window, old lines in the before window), else the nearest.
function M.hunk_at_cursor()
  local diff = M.diff
  if not diff then
    return nil
  end
  local win = vim.api.nvim_get_current_win()
  local on_before = vim.api.nvim_win_get_buf(win) == diff.before_buf
  local line = vim.api.nvim_win_get_cursor(win)[1]
  local best, best_distance = nil, math.huge
  for _, hunk in ipairs(diff.change.hunks or {}) do
    if hunk.status == "pending" then
      local start = on_before and hunk.oldStart or hunk.newStart
      local count = on_before and hunk.oldLines or hunk.newLines
      local distance = 0
      if line < start then
        distance = start - line
      elseif line > start + math.max(count, 1) - 1 then
        distance = line - (start + math.max(count, 1) - 1)
      end
      if distance < best_distance then
        best, best_distance = hunk, distance
      end
    end
  end
  return best
end

-- Shows the diff again with the file's hunks as the server now has them.
local function refresh_diff(session_id)
  local diff = M.diff
  fetch_change(session_id, diff.change.path, function(change)
    if M.diff ~= diff then
      return
    end
    diff.change = change
    local buf = diff.before_buf
    vim.bo[buf].modifiable = true
    vim.api.nvim_buf_set_lines(buf, 0, -1, false, M.baseline(change))
    vim.bo[buf].modifiable = false
    vim.api.nvim_win_call(diff.file_win, function() vim.cmd("diffupdate") end)
    fire("CrushReviewed", { path = change.path, change = change })
  end)
end

-- :CrushAccept / :CrushReject: agent/review of the hunk under the cursor.
function M.review(decision)
  local diff = M.diff
  if not diff then
    return notify(":CrushAccept and :CrushReject work in a :CrushDiff", vim.log.levels.WARN)
  end
  local hunk = M.hunk_at_cursor()
  if not hunk then
    return notify("no hunk left to review in " .. diff.change.path)
  end
  with_session(function(session_id)
    local params = { sessionId = session_id, path = diff.change.path, hunks = { { id = hunk.id, decision = decision } } }
    client.request("agent/review", params, function(err)
      if err then
        return failed(err)
      end
      if M.diff == diff then
        refresh_diff(session_id)
      end
    end)
  end)
end

-- ----------------------------------------------------------------- rewind

local function paths(list)
  return table.concat(vim.tbl_map(function(item) return item.path end, list or {}), ", ")
end

local function reload_chat(session_id, callback)
  client.request("session/get", { sessionId = session_id }, function(err, session)
    if err then
      return failed(err)
    end
    crush().load_session(session, callback)
  end)
end

local function report(verb, result, force_command)
  local text = string.format("%s: %s", verb, #result.restored > 0 and paths(result.restored) or "no files to restore")
  if #result.conflicts > 0 then
    text = string.format("%s; left alone, changed by hand since: %s (%s forces)", text, paths(result.conflicts),
      force_command)
  end
  notify(text, #result.conflicts > 0 and vim.log.levels.WARN or vim.log.levels.INFO)
end

-- The user entry of the chat whose block holds line `lnum` (1-based).
local function user_entry_at(lnum)
  local start = 0
  for _, entry in ipairs(chat.entries) do
    if lnum > start and lnum <= start + entry.line_count then
      return entry.kind == "user" and entry or nil
    end
    start = start + entry.line_count
  end
end

-- :CrushRewind[!] on a user message of the chat: confirms with the files it
-- restores, then the session goes back to before that message; its text goes
-- back into the prompt.
function M.rewind(force)
  local entry = vim.api.nvim_get_current_buf() == chat.chat_buffer()
    and user_entry_at(vim.api.nvim_win_get_cursor(0)[1])
  if not entry or not entry.message_id then
    return notify(":CrushRewind works on a user message (## You) in the chat", vim.log.levels.WARN)
  end
  with_session(function(session_id)
    client.request("agent/changes", { sessionId = session_id, sinceMessageId = entry.message_id }, function(err, result)
      if err then
        return failed(err)
      end
      local files = #result.files > 0 and paths(result.files) or "no files"
      local prompt = string.format("crush: rewind to before \"%s\"? It restores %s and hides the messages from there on",
        vim.split(entry.text, "\n")[1], files)
      vim.ui.select({ "Rewind", "Cancel" }, { prompt = prompt, kind = "crush.rewind" }, function(choice)
        if choice ~= "Rewind" then
          return
        end
        local params = { sessionId = session_id, messageId = entry.message_id, force = force or nil }
        client.request("agent/rewind", params, function(rewind_err, rewound)
          if rewind_err then
            return failed(rewind_err)
          end
          report("rewound", rewound, ":CrushRewind!")
          vim.cmd("silent! checktime")
          reload_chat(session_id, function()
            chat.set_prompt(entry.text)
            fire("CrushRewound", rewound)
          end)
        end)
      end)
    end)
  end)
end

-- :CrushUnrewind[!]: the files and messages of the last rewind back.
function M.unrewind(force)
  with_session(function(session_id)
    client.request("agent/unrewind", { sessionId = session_id, force = force or nil }, function(err, result)
      if err then
        return failed(err)
      end
      report("unrewound", result, ":CrushUnrewind!")
      vim.cmd("silent! checktime")
      reload_chat(session_id, function() fire("CrushUnrewound", result) end)
    end)
  end)
end

-- :CrushTakeBack: the last queued prompt leaves the queue and goes back into the prompt buffer.
function M.take_back()
  with_session(function(session_id)
    client.request("agent/popQueue", { sessionId = session_id }, function(err, result)
      if err then
        return failed(err)
      end
      if result.prompt == nil or result.prompt == vim.NIL then
        return notify("no queued prompt to take back")
      end
      crush().forget_run(result.runId)
      chat.set_prompt(result.prompt)
      fire("CrushTakenBack", result)
    end)
  end)
end

return M

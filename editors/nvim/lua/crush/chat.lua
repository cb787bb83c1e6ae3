-- The chat view: the `crush://chat` buffer (the conversation), the
-- `crush://prompt` buffer (where the user types) and their windows.
--
-- The conversation is a list of entries (a user prompt, an assistant message,
-- a note). Each entry owns a contiguous block of lines; changing an entry
-- re-renders only its block, so streaming touches only the end of the buffer.
local config = require("crush.config")

local M = {
  entries = {},
  -- The context items that go with the next prompt (:CrushAdd, :'<,'>CrushChat),
  -- shown as the last block of the chat, below the entries.
  pending = {},
  pending_count = 0, -- lines of that block
  status = { state = "idle", queued = 0, model = nil, input_tokens = 0, output_tokens = 0, mcp = nil },
}

M.CHAT_NAME = "crush://chat"
M.PROMPT_NAME = "crush://prompt"

local chat_buf, prompt_buf

local function split_lines(text)
  if text == nil or text == "" then
    return {}
  end
  return vim.split(text, "\n", { plain = true })
end

-- ---------------------------------------------------------------- rendering

local INPUT_KEYS = { "file_path", "path", "command", "pattern", "url" }

local function describe_input(input)
  if type(input) ~= "table" then
    return ""
  end
  for _, key in ipairs(INPUT_KEYS) do
    if type(input[key]) == "string" then
      return input[key]
    end
  end
  local ok, json = pcall(vim.json.encode, input)
  json = ok and json or ""
  if #json > 60 then
    json = json:sub(1, 57) .. "..."
  end
  return json == "{}" and "" or json
end

local function render_result(result, lines)
  local diff = result.metadata and result.metadata.diff
  if type(diff) == "string" and diff ~= "" then
    -- Diffs are kept whole but folded (see foldexpr): `za` opens one.
    table.insert(lines, "  diff " .. (result.metadata.path or ""))
    for _, line in ipairs(split_lines(diff:gsub("\n$", ""))) do
      table.insert(lines, "  ┊ " .. line)
    end
    return
  end
  local body = split_lines((result.content or ""):gsub("\n$", ""))
  local prefix = result.isError and "  ! " or "  │ "
  local limit = config.options.result_lines
  for i = 1, math.min(#body, limit) do
    table.insert(lines, prefix .. body[i])
  end
  if #body > limit then
    table.insert(lines, string.format("%s… %d more lines", prefix, #body - limit))
  end
end

local function render_tool(part, lines)
  local target = describe_input(part.input)
  local head = "[tool] " .. part.name .. (target ~= "" and (" " .. target) or "")
  table.insert(lines, string.format("%s (%s)", head, part.status or "pending"))
  if part.result then
    render_result(part.result, lines)
  end
end

local renderers = {}

-- "file src/app.py", "selection src/app.py:12-14": a context item in one line.
function M.context_label(item)
  local label = item.kind .. " " .. (item.path or item.uri)
  if item.range then
    label = string.format("%s:%d-%d", label, item.range.start.line + 1, item.range["end"].line + 1)
  end
  return label
end

function renderers.user(entry)
  local lines = { entry.queued and "## You (queued)" or "## You" }
  vim.list_extend(lines, split_lines(entry.text))
  for _, item in ipairs(entry.context or {}) do
    table.insert(lines, "[context] " .. M.context_label(item))
  end
  table.insert(lines, "")
  return lines
end

local PENDING_HEADER = "## Context for the next prompt (x removes an item)"

local function render_pending()
  if #M.pending == 0 then
    return {}
  end
  local lines = { PENDING_HEADER }
  for _, item in ipairs(M.pending) do
    table.insert(lines, "- " .. M.context_label(item))
  end
  table.insert(lines, "")
  return lines
end

function renderers.assistant(entry)
  local lines = {}
  if entry.header then
    table.insert(lines, "## Crush")
  end
  for _, part in ipairs(entry.parts) do
    if part.type == "text" then
      vim.list_extend(lines, split_lines(part.text))
    elseif part.type == "reasoning" then
      for _, line in ipairs(split_lines(part.text)) do
        table.insert(lines, "> " .. line)
      end
    elseif part.type == "tool" then
      render_tool(part, lines)
    end
  end
  if #lines > 0 then
    table.insert(lines, "")
  end
  return lines
end

function renderers.note(entry)
  local lines = split_lines(entry.text)
  table.insert(lines, "")
  return lines
end

-- ------------------------------------------------------------------ buffers

local function find_buffer(name)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_valid(buf) and vim.api.nvim_buf_get_name(buf) == name then
      return buf
    end
  end
end

local function scratch_buffer(name, filetype)
  local buf = find_buffer(name) or vim.api.nvim_create_buf(true, true)
  vim.api.nvim_buf_set_name(buf, name)
  vim.bo[buf].buftype = "nofile"
  vim.bo[buf].bufhidden = "hide"
  vim.bo[buf].swapfile = false
  vim.bo[buf].filetype = filetype
  return buf
end

local function map(buf, mode, lhs, rhs, desc)
  vim.keymap.set(mode, lhs, rhs, { buffer = buf, silent = true, desc = desc })
end

function M.chat_buffer()
  if not (chat_buf and vim.api.nvim_buf_is_valid(chat_buf)) then
    chat_buf = scratch_buffer(M.CHAT_NAME, "crush")
    vim.bo[chat_buf].modifiable = false
    map(chat_buf, "n", "<C-c>", function() require("crush").cancel() end, "crush: cancel the run")
    map(chat_buf, "n", "i", function() M.focus_prompt(true) end, "crush: type a prompt")
    map(chat_buf, "n", "<CR>", function() M.focus_prompt(true) end, "crush: type a prompt")
    map(chat_buf, "n", "x", M.remove_pending_at_cursor, "crush: remove this context item")
    M.rerender()
  end
  return chat_buf
end

-- Sends the prompt buffer's text and empties it.
function M.submit_prompt()
  local buf = M.prompt_buffer()
  local text = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), "\n")
  if vim.trim(text) == "" then
    return
  end
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, {})
  require("crush").send(text)
end

function M.prompt_buffer()
  if not (prompt_buf and vim.api.nvim_buf_is_valid(prompt_buf)) then
    prompt_buf = scratch_buffer(M.PROMPT_NAME, "markdown")
    map(prompt_buf, "n", "<CR>", M.submit_prompt, "crush: send the prompt")
    map(prompt_buf, "i", "<C-s>", function()
      vim.cmd("stopinsert")
      M.submit_prompt()
    end, "crush: send the prompt")
    map(prompt_buf, "n", "<C-c>", function() require("crush").cancel() end, "crush: cancel the run")
  end
  return prompt_buf
end

-- ------------------------------------------------------------------ windows

local function window_of(buf)
  if not buf then
    return nil
  end
  for _, win in ipairs(vim.api.nvim_tabpage_list_wins(0)) do
    if vim.api.nvim_win_get_buf(win) == buf then
      return win
    end
  end
end

function M.chat_window()
  return window_of(chat_buf)
end

function M.foldexpr(lnum)
  return vim.fn.getline(lnum):sub(1, 5) == "  ┊" and "1" or "0"
end

function M.foldtext()
  local count = vim.v.foldend - vim.v.foldstart + 1
  return string.format("  ┊ %d diff lines (za to open)", count)
end

function M.statusline()
  local s = M.status
  local state = s.state
  if s.queued > 0 then
    state = string.format("%s, %d queued", state, s.queued)
  end
  local parts = { "crush", state }
  if s.model then
    table.insert(parts, s.model)
  end
  table.insert(parts, string.format("tokens %d in / %d out", s.input_tokens, s.output_tokens))
  if s.mcp then
    table.insert(parts, s.mcp)
  end
  return " " .. table.concat(parts, " │ ")
end

local function set_chat_window_options(win)
  local wo = vim.wo[win]
  wo.wrap = true
  wo.linebreak = true
  wo.number = false
  wo.relativenumber = false
  wo.signcolumn = "no"
  wo.foldmethod = "expr"
  wo.foldexpr = "v:lua.require'crush.chat'.foldexpr(v:lnum)"
  wo.foldtext = "v:lua.require'crush.chat'.foldtext()"
  wo.foldlevel = 0
  wo.statusline = "%!v:lua.require'crush.chat'.statusline()"
end

local function open_chat_window()
  local opts = config.options.chat
  if opts.position == "bottom" then
    vim.cmd("botright split")
    vim.api.nvim_win_set_height(0, opts.height)
  else
    vim.cmd("botright vsplit")
    vim.api.nvim_win_set_width(0, opts.width)
  end
  local win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, M.chat_buffer())
  set_chat_window_options(win)
  return win
end

local function open_prompt_window(chat_win)
  vim.api.nvim_set_current_win(chat_win)
  vim.cmd("belowright split")
  local win = vim.api.nvim_get_current_win()
  vim.api.nvim_win_set_buf(win, M.prompt_buffer())
  vim.api.nvim_win_set_height(win, config.options.chat.prompt_height)
  vim.wo[win].winfixheight = true
  vim.wo[win].number = false
  vim.wo[win].relativenumber = false
  vim.wo[win].statusline = " prompt │ <CR> send (normal mode) · <C-s> send (insert) · <C-c> cancel"
  return win
end

function M.focus_prompt(insert)
  local win = window_of(prompt_buf) or open_prompt_window(M.chat_window() or open_chat_window())
  vim.api.nvim_set_current_win(win)
  if insert then
    vim.cmd("startinsert!")
  end
end

-- :CrushChat: shows the chat and its prompt, and starts typing in the prompt.
function M.open()
  local chat_win = M.chat_window() or open_chat_window()
  local prompt_win = window_of(prompt_buf) or open_prompt_window(chat_win)
  vim.api.nvim_set_current_win(prompt_win)
  M.scroll_to_end()
  vim.cmd("startinsert!")
end

function M.scroll_to_end()
  local win = M.chat_window()
  if win then
    vim.api.nvim_win_set_cursor(win, { vim.api.nvim_buf_line_count(chat_buf), 0 })
  end
end

-- ---------------------------------------------------------------- the model

local function block_start(index)
  local start = 0
  for i = 1, index - 1 do
    start = start + M.entries[i].line_count
  end
  return start
end

local function write_lines(first, last, lines)
  local buf = M.chat_buffer()
  vim.bo[buf].modifiable = true
  vim.api.nvim_buf_set_lines(buf, first, last, false, lines)
  vim.bo[buf].modifiable = false
end

-- Nothing rendered yet: the buffer holds only Neovim's one empty line.
local function is_blank()
  return block_start(#M.entries + 1) + M.pending_count == 0
end

-- Replaces `count` lines at `start` with `lines`; keeps the view following the end of the chat.
local function replace_block(start, count, lines)
  local buf = M.chat_buffer()
  local win = M.chat_window()
  local following = win and vim.api.nvim_win_get_cursor(win)[1] >= vim.api.nvim_buf_line_count(buf) - 1
  write_lines(start, is_blank() and -1 or start + count, lines)
  if following then
    M.scroll_to_end()
  end
end

-- Re-renders one entry in place.
function M.update(entry)
  M.chat_buffer() -- made (and rendered) first, so that the block counts below are its own
  local lines = renderers[entry.kind](entry)
  replace_block(block_start(entry.index), entry.line_count, lines)
  entry.line_count = #lines
end

-- Shows `items` as the context of the next prompt (the block below the entries).
function M.set_pending(items)
  M.chat_buffer()
  M.pending = items
  local lines = render_pending()
  replace_block(block_start(#M.entries + 1), M.pending_count, lines)
  M.pending_count = #lines
end

-- `x` in the chat: drops the context item under the cursor from the next prompt.
function M.remove_pending_at_cursor()
  local first_item = block_start(#M.entries + 1) + 2 -- 1-based line of the first item, under the header
  local index = vim.api.nvim_win_get_cursor(0)[1] - first_item + 1
  if #M.pending > 0 and index >= 1 and index <= #M.pending then
    local items = vim.deepcopy(M.pending)
    table.remove(items, index)
    M.set_pending(items)
  end
end

function M.add(entry)
  table.insert(M.entries, entry)
  entry.index = #M.entries
  entry.line_count = 0
  M.update(entry)
  return entry
end

-- Deletes an entry's lines and renumbers the entries after it.
local function take_out(entry)
  local start = block_start(entry.index)
  write_lines(start, start + entry.line_count, {})
  table.remove(M.entries, entry.index)
  for i = entry.index, #M.entries do
    M.entries[i].index = i
  end
end

-- Takes an entry out of the chat (a queued prompt taken back).
function M.remove(entry)
  if M.entries[entry.index] ~= entry then
    return
  end
  take_out(entry)
end

-- Opens the chat with `text` in the prompt (a prompt taken back or rewound), the cursor at its end.
function M.set_prompt(text)
  local buf = M.prompt_buffer()
  vim.api.nvim_buf_set_lines(buf, 0, -1, false, split_lines(text))
  M.focus_prompt(false)
  local last = vim.api.nvim_buf_line_count(buf)
  vim.api.nvim_win_set_cursor(0, { last, #(vim.api.nvim_buf_get_lines(buf, last - 1, last, false)[1] or "") })
end

-- Moves an entry below the others (a queued prompt, once its run starts).
function M.move_to_end(entry)
  if entry.index == #M.entries then
    return M.update(entry)
  end
  take_out(entry)
  M.add(entry)
end

function M.rerender()
  local lines = {}
  for _, entry in ipairs(M.entries) do
    local block = renderers[entry.kind](entry)
    entry.line_count = #block
    vim.list_extend(lines, block)
  end
  local pending = render_pending()
  M.pending_count = #pending
  vim.list_extend(lines, pending)
  write_lines(0, -1, lines)
end

function M.clear()
  M.entries = {}
  M.rerender()
end

function M.set_status(fields)
  M.status = vim.tbl_extend("force", M.status, fields)
  if M.chat_window() then
    vim.cmd("redrawstatus!")
  end
end

function M.lines()
  return vim.api.nvim_buf_get_lines(M.chat_buffer(), 0, -1, false)
end

return M

-- The editor as the agent's source of truth (protocol.md, "Documents and edits"):
-- the file buffers of the workspace are attached to the crush client, so
-- vim.lsp sends didOpen/didChange and applies the agent's workspace/applyEdit
-- into them (and their undo history); and the server-to-client requests that
-- need the editor: agent/saveDocument, agent/diagnostics, window/showDocument.
local M = {}

local GROUP = "crush.buffers"

-- The workspace folder of the client, as a path.
local function root_of(client)
  local folder = client.workspace_folders and client.workspace_folders[1]
  return folder and vim.fs.normalize(vim.uri_to_fname(folder.uri)) or nil
end

local function inside(path, root)
  return root ~= nil and (path == root or vim.startswith(path, root:gsub("/$", "") .. "/"))
end

-- A buffer the server should mirror: a file buffer (saved or not) inside the workspace.
local function is_workspace_file(buf, root)
  if not vim.api.nvim_buf_is_loaded(buf) or vim.bo[buf].buftype ~= "" then
    return false
  end
  local name = vim.api.nvim_buf_get_name(buf)
  return name ~= "" and not name:match("^%a[%w+.-]*://") and inside(vim.fs.normalize(name), root)
end

function M.attach(client, buf)
  if client and is_workspace_file(buf, root_of(client)) and not vim.lsp.buf_is_attached(buf, client.id) then
    vim.lsp.buf_attach_client(buf, client.id)
  end
end

function M.attach_all(client)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    M.attach(client, buf)
  end
end

-- Attaches the workspace's buffers now and each one read or created from now on.
-- `get_client()` is nil once the server stopped: nothing is attached then.
function M.watch(get_client)
  local group = vim.api.nvim_create_augroup(GROUP, { clear = true })
  vim.api.nvim_create_autocmd({ "BufReadPost", "BufNewFile", "BufEnter", "BufFilePost" }, {
    group = group,
    callback = function(ev)
      M.attach(get_client(), ev.buf)
    end,
  })
  M.attach_all(get_client())
end

-- The loaded buffer of a file: URI (never creates one, unlike vim.uri_to_bufnr).
function M.buffer_of(uri)
  local ok, fname = pcall(vim.uri_to_fname, uri)
  if not ok then
    return nil
  end
  fname = vim.fs.normalize(fname)
  for _, buf in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(buf) and vim.fs.normalize(vim.api.nvim_buf_get_name(buf)) == fname then
      return buf
    end
  end
end

-- agent/saveDocument {uri}: writes that buffer, and only it, without a message.
-- `:update` leaves a buffer alone that has nothing to write.
function M.save_document(_, params)
  local buf = params and M.buffer_of(params.uri)
  if not buf then
    return { saved = false }
  end
  local ok, err = pcall(vim.api.nvim_buf_call, buf, function()
    vim.cmd("silent keepalt keepjumps lockmarks update")
  end)
  if not ok then
    vim.notify("crush: could not save " .. vim.api.nvim_buf_get_name(buf) .. ": " .. tostring(err), vim.log.levels.WARN)
  end
  return { saved = ok and not vim.bo[buf].modified }
end

-- A vim.Diagnostic as an LSP Diagnostic: the one its language server sent when
-- there is one, else converted (columns are bytes in Neovim, UTF-16 in LSP).
local function to_lsp(diagnostic)
  local lsp = diagnostic.user_data and diagnostic.user_data.lsp
  if lsp then
    return lsp
  end
  local function position(lnum, col)
    local line = vim.api.nvim_buf_is_loaded(diagnostic.bufnr)
      and (vim.api.nvim_buf_get_lines(diagnostic.bufnr, lnum, lnum + 1, false)[1])
    local ok, character = pcall(vim.str_utfindex, line or "", "utf-16", math.min(col or 0, #(line or "")), false)
    return { line = lnum, character = ok and character or (col or 0) }
  end
  return {
    range = {
      start = position(diagnostic.lnum, diagnostic.col),
      ["end"] = position(diagnostic.end_lnum or diagnostic.lnum, diagnostic.end_col or diagnostic.col),
    },
    severity = diagnostic.severity,
    message = diagnostic.message,
    source = diagnostic.source,
    code = diagnostic.code,
  }
end

local function lsp_diagnostics(list)
  return vim.tbl_map(to_lsp, list)
end

-- agent/diagnostics {uris?}: vim.diagnostic.get for the files asked, else every file that has any.
function M.diagnostics(_, params)
  local items = {}
  local uris = params and params.uris
  if type(uris) == "table" then
    for _, uri in ipairs(uris) do
      local buf = M.buffer_of(uri)
      table.insert(items, { uri = uri, diagnostics = buf and lsp_diagnostics(vim.diagnostic.get(buf)) or {} })
    end
    return { items = items }
  end
  local by_buffer = {}
  for _, diagnostic in ipairs(vim.diagnostic.get(nil)) do
    by_buffer[diagnostic.bufnr] = by_buffer[diagnostic.bufnr] or {}
    table.insert(by_buffer[diagnostic.bufnr], diagnostic)
  end
  for buf, list in pairs(by_buffer) do
    if vim.api.nvim_buf_is_valid(buf) and vim.api.nvim_buf_get_name(buf) ~= "" then
      table.insert(items, { uri = vim.uri_from_bufnr(buf), diagnostics = lsp_diagnostics(list) })
    end
  end
  return { items = items }
end

-- The window to show a file in without leaving the chat: one showing it, else
-- the last file window of the tab (not the chat or the prompt).
local function file_window(buf)
  local tab_wins = vim.api.nvim_tabpage_list_wins(0)
  for _, win in ipairs(tab_wins) do
    if vim.api.nvim_win_get_buf(win) == buf then
      return win
    end
  end
  local previous = vim.fn.win_getid(vim.fn.winnr("#"))
  for _, win in ipairs({ previous, unpack(tab_wins) }) do
    if win ~= 0 and vim.api.nvim_win_is_valid(win) and vim.api.nvim_win_get_config(win).relative == ""
      and vim.bo[vim.api.nvim_win_get_buf(win)].buftype == "" then
      return win
    end
  end
end

-- window/showDocument with takeFocus false (follow the agent): the file in a
-- file window, the cursor on the change, the focus left where it is.
function M.show_document(err, params, ctx)
  if params.external or params.takeFocus then
    return vim.lsp.handlers["window/showDocument"](err, params, ctx)
  end
  local buf = vim.uri_to_bufnr(params.uri)
  local win = file_window(buf)
  if not win then
    return vim.lsp.handlers["window/showDocument"](err, params, ctx)
  end
  vim.fn.bufload(buf)
  vim.bo[buf].buflisted = true
  if vim.api.nvim_win_get_buf(win) ~= buf then
    vim.api.nvim_win_set_buf(win, buf)
  end
  local start = params.selection and params.selection.start
  if start then
    local line = vim.api.nvim_buf_get_lines(buf, start.line, start.line + 1, false)[1] or ""
    local ok, col = pcall(vim.str_byteindex, line, "utf-16", start.character, false)
    pcall(vim.api.nvim_win_set_cursor, win, { start.line + 1, ok and col or 0 })
    vim.api.nvim_win_call(win, function() vim.cmd("normal! zv") end)
  end
  return { success = true }
end

return M

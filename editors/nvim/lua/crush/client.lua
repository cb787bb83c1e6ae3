-- The crush-ls connection: one Neovim LSP client for the project root.
local config = require("crush.config")
local buffers = require("crush.buffers")

local M = {
  client_id = nil,
  ready = false,
  -- Set by crush/init.lua: called with the params of every agent/notification.
  on_notification = function(_) end,
  -- Set by crush/init.lua: called once the server answered `initialize`.
  on_ready = function(_) end,
  -- Set by crush/init.lua: called when the server exits.
  on_exit = function(_) end,
}

local waiting = {} -- callbacks waiting for the initialize result

-- The last stderr lines of the running server, to explain an exit before
-- `initialize` was answered. Neovim's LSP transport sends a server's stderr only
-- to vim.lsp.log.error("rpc", cmd, "stderr", chunk); this wrapper keeps ours too.
local STDERR_LINES = 20
local stderr = { cmd = nil, lines = {} }

local function capture_stderr()
  local log = require("vim.lsp.log")
  if log._crush_stderr then
    return
  end
  local original = log.error
  log.error = function(...)
    local source, kind, chunk = select(1, ...), select(3, ...), select(4, ...)
    local cmd = select(2, ...)
    if source == "rpc" and kind == "stderr" and type(chunk) == "string" and stderr.cmd
      and (cmd == stderr.cmd[1] or vim.deep_equal(cmd, stderr.cmd)) then
      for line in chunk:gmatch("[^\r\n]+") do
        table.insert(stderr.lines, line)
        if #stderr.lines > STDERR_LINES then
          table.remove(stderr.lines, 1)
        end
      end
    end
    return original(...)
  end
  log._crush_stderr = true
end

function M.stderr_tail(n)
  n = n or 3
  return vim.list_slice(stderr.lines, math.max(1, #stderr.lines - n + 1))
end

-- One error for a server that cannot start: the command, how it ended, its stderr tail.
local function report_start_failure(cmd, how)
  local tail = M.stderr_tail()
  local message = string.format("crush: `%s` %s.", table.concat(cmd, " "), how)
  if #tail > 0 then
    message = message .. " Last lines of its stderr:\n" .. table.concat(tail, "\n")
  end
  vim.notify(message .. "\nRun :checkhealth crush for what to do.", vim.log.levels.ERROR)
end

local has_011 = vim.fn.has("nvim-0.11") == 1

-- Neovim 0.11 made client methods take self; 0.10 closes over it.
local function call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end

function M.get()
  if not M.client_id then
    return nil
  end
  local client = vim.lsp.get_client_by_id(M.client_id)
  if not client or (client.is_stopped and call(client, "is_stopped")) then
    return nil
  end
  return client
end

-- The folder URI exactly as the client sent it: the server names workspaces by it.
function M.workspace()
  local client = M.get()
  local folders = client and client.workspace_folders
  return folders and folders[1] and folders[1].uri or nil
end

function M.root_dir()
  local markers = config.options.root_markers
  if vim.bo.buftype == "" and vim.api.nvim_buf_get_name(0) ~= "" then
    return vim.fs.root(0, markers) or vim.fn.getcwd()
  end
  return vim.fs.root(vim.fn.getcwd(), markers) or vim.fn.getcwd()
end

local PERMISSION_CHOICES = { "Allow", "Allow for session", "Deny" }
local DECISIONS = { ["Allow"] = "allow", ["Allow for session"] = "allow_session", ["Deny"] = "deny" }

local function permission_prompt(permission)
  local target = permission.path or permission.description or ""
  return string.format("crush: %s wants to %s %s", permission.tool, permission.action or "run", target)
end

-- agent/requestPermission: asked through vim.ui.select. The handler runs in a
-- coroutine (Neovim's RPC layer wraps server requests in one), so it can wait
-- for an asynchronous picker without blocking the editor.
local function ask_permission(_, params, _)
  local permission = params.permission or {}
  local decision, answered = nil, false
  local co = coroutine.running()
  vim.ui.select(PERMISSION_CHOICES, {
    prompt = permission_prompt(permission),
    kind = "crush.permission",
  }, function(choice)
    decision = DECISIONS[choice] or "deny"
    answered = true
    if co and coroutine.status(co) == "suspended" then
      coroutine.resume(co)
    end
  end)
  if not answered then
    if co then
      coroutine.yield()
    else
      vim.wait(config.options.permission_timeout_ms or 300000, function()
        return answered
      end)
    end
  end
  return { decision = decision or "deny" }
end

local function client_capabilities()
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  capabilities.experimental = vim.tbl_deep_extend("force", capabilities.experimental or {}, {
    crush = { permissions = true, saveDocument = true, diagnostics = true },
  })
  -- vim.lsp applies documentChanges and skips an edit of an older version, but
  -- does not say so: declared, the server's edits are versioned (protocol.md).
  capabilities.workspace.workspaceEdit.documentChanges = true
  return capabilities
end

local function init_options()
  local options = vim.deepcopy(config.options.init_options or {})
  if config.options.follow_agent and options.followAgent == nil then
    options.followAgent = true
  end
  return options
end

local function flush_waiting(client)
  local callbacks = waiting
  waiting = {}
  for _, callback in ipairs(callbacks) do
    callback(client)
  end
end

function M.start()
  if M.get() then
    return M.client_id
  end
  M.ready = false
  local cmd = config.cmd()
  if vim.fn.executable(cmd[1]) == 0 then
    vim.notify(string.format("crush: the server command `%s` is not executable. Run :CrushInstall, or set "
      .. "`cmd` in require('crush').setup(); :checkhealth crush says more.", cmd[1]), vim.log.levels.ERROR)
    return nil
  end
  capture_stderr()
  stderr.cmd, stderr.lines = cmd, {}
  local started, id = pcall(vim.lsp.start, {
    name = "crush",
    -- The server confirms each agent edit by the didChange that follows it:
    -- Neovim's default 150 ms debounce would be the most of every edit's time.
    flags = { debounce_text_changes = config.options.debounce_ms },
    cmd = cmd,
    root_dir = M.root_dir(),
    init_options = init_options(),
    capabilities = client_capabilities(),
    handlers = {
      ["agent/notification"] = function(_, params)
        M.on_notification(params)
      end,
      ["agent/requestPermission"] = ask_permission,
      ["agent/saveDocument"] = function(...) return buffers.save_document(...) end,
      ["agent/diagnostics"] = function(...) return buffers.diagnostics(...) end,
      ["window/showDocument"] = function(...) return buffers.show_document(...) end,
    },
    on_init = function(client)
      M.ready = true
      M.on_ready(client)
      flush_waiting(client)
    end,
    on_exit = function(code, signal)
      local before_ready = not M.ready
      M.ready = false
      M.client_id = nil
      waiting = {}
      vim.schedule(function()
        if before_ready then
          local how = signal ~= 0 and ("was killed by signal " .. signal) or ("exited with code " .. code)
          report_start_failure(cmd, how .. " before it answered initialize")
        end
        M.on_exit({ code = code, signal = signal, before_ready = before_ready })
        vim.api.nvim_exec_autocmds("User", { pattern = "CrushServerExit", data = { code = code, signal = signal } })
      end)
    end,
  }, { attach = false })
  if not started then
    -- Neovim's message holds a Lua error position; the command and the fix are what help.
    report_start_failure(cmd, "could not be started (" .. tostring(id):gsub("^.-:%d+: ", "") .. ")")
    return nil
  end
  M.client_id = id
  buffers.watch(M.get)
  return M.client_id
end

-- Calls `callback(client)` once the server has answered `initialize`.
function M.with_client(callback)
  M.start()
  local client = M.get()
  if client and M.ready then
    callback(client)
  elseif M.client_id then
    table.insert(waiting, callback)
  end -- else start() has said why, once
end

-- Sends a request naming the workspace; `callback(err, result)`.
function M.request(method, params, callback)
  M.with_client(function(client)
    params = vim.tbl_extend("keep", params or {}, { workspace = M.workspace() })
    call(client, "request", method, params, function(err, result)
      if callback then
        callback(err, result)
      end
    end)
  end)
end

-- Blocks up to `timeout_ms`; returns result, err (for :checkhealth and scripts).
function M.request_sync(method, params, timeout_ms)
  M.start()
  local ok = vim.wait(timeout_ms, function()
    return M.ready or not M.client_id
  end, 20)
  local client = M.get()
  if not ok or not client or not M.ready then
    return nil, { message = "crush-ls did not finish initializing" }
  end
  params = vim.tbl_extend("keep", params or {}, { workspace = M.workspace() })
  local response, err = call(client, "request_sync", method, params, timeout_ms)
  if not response then
    return nil, { message = err or "no response" }
  end
  return response.result, response.err
end

function M.stop()
  local client = M.get()
  if client then
    call(client, "stop")
  end
end

return M

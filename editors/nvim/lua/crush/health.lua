-- :checkhealth crush: the server command, its version (serverInfo) and model.
local config = require("crush.config")
local client = require("crush.client")

local M = {}

local STARTUP_TIMEOUT_MS = 10000

local function check_command(cmd)
  local exe = cmd[1]
  if vim.fn.executable(exe) == 1 then
    vim.health.ok(string.format("server command: `%s` (%s)", table.concat(cmd, " "), vim.fn.exepath(exe)))
    return true
  end
  vim.health.error(
    string.format("server command `%s` is not executable", table.concat(cmd, " ")),
    { "Install crush-ls (`pip install crush-ls`) or pass `cmd` to require('crush').setup()" }
  )
  return false
end

local function check_server()
  local models, err = client.request_sync("agent/models", {}, STARTUP_TIMEOUT_MS)
  local lsp_client = client.get()
  local info = lsp_client and lsp_client.server_info
  if info then
    vim.health.ok(string.format("server: %s %s", info.name or "?", info.version or "(no version)"))
  elseif not lsp_client then
    vim.health.error("crush-ls did not start; see :LspLog")
    return
  else
    vim.health.warn("the server sent no serverInfo")
  end
  if models and models.current then
    local current = models.current
    vim.health.ok(string.format("model: %s/%s (%s)", current.provider, current.model, current.name or current.model))
  else
    local why = err and err.message or (models and "the server has no current model" or "agent/models gave no answer")
    vim.health.error("no usable model: " .. why, {
      "Set `init_options.model` in require('crush').setup() or `model` in crush.json",
    })
  end
end

function M.check()
  vim.health.start("crush")
  vim.health.info("Neovim " .. tostring(vim.version()))
  if check_command(config.options.cmd) then
    check_server()
  end
end

return M

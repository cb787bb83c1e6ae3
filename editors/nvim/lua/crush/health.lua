-- :checkhealth crush: the server command (and the fix when it is missing or
-- broken), `crush-ls doctor`'s report, the server's version (serverInfo), model and MCP servers.
local config = require("crush.config")
local client = require("crush.client")
local install = require("crush.install")

local M = {}

local STARTUP_TIMEOUT_MS = 10000

local function fixes()
  local advice = {}
  local python, why = install.find_python()
  if python then
    table.insert(advice, string.format("Run :CrushInstall: it creates %s with %s and installs %s into it",
      install.venv(), python, install.package_spec() or "the `install.package` of setup()"))
  else
    table.insert(advice, "To use :CrushInstall, " .. why)
  end
  table.insert(advice, "Or put an installed crush-ls in `cmd`: require('crush').setup({ cmd = { '/path/to/venv/bin/crush-ls' } })")
  return advice
end

local function check_command(cmd)
  local exe = cmd[1]
  if vim.fn.executable(exe) == 1 then
    vim.health.ok(string.format("server command: `%s` (%s)", table.concat(cmd, " "), vim.fn.exepath(exe)))
    return true
  end
  vim.health.error(string.format("server command `%s` is not executable (not found%s)", table.concat(cmd, " "),
    config.options.cmd and ", from setup()'s `cmd`" or " on $PATH, and :CrushInstall has not run"), fixes())
  return false
end

-- `crush-ls doctor` for the project root: its lines, as ok / warn / error.
local function check_doctor(cmd)
  -- The options the server gets: their model is the one to check.
  local args = vim.list_extend(vim.deepcopy(cmd), { "doctor", "--folder", client.root_dir(),
    "--init-options", vim.json.encode(config.options.init_options or {}) })
  local result = vim.system(args, { text = true }):wait(STARTUP_TIMEOUT_MS * 3)
  local report = vim.split(vim.trim(result.stdout or ""), "\n", { trimempty = true })
  if #report == 0 or not report[1]:match("^crush%-ls doctor") then
    local err = vim.split(vim.trim(result.stderr or ""), "\n", { trimempty = true })
    vim.health.error(string.format("`%s` exited with code %s: %s", table.concat(args, " "), tostring(result.code),
      table.concat(vim.list_slice(err, math.max(1, #err - 2)), " | ")), fixes())
    return false
  end
  for _, line in ipairs(report) do
    local level, text = line:match("^(%a+)%s+(.*)$")
    if level == "error" then
      vim.health.error("doctor: " .. text)
    elseif level == "warn" then
      vim.health.warn("doctor: " .. text)
    elseif level == "ok" then
      vim.health.ok("doctor: " .. text)
    else
      vim.health.info("doctor: " .. line)
    end
  end
  return result.code == 0
end

local function check_server()
  local models, err = client.request_sync("agent/models", {}, STARTUP_TIMEOUT_MS)
  local lsp_client = client.get()
  local info = lsp_client and lsp_client.server_info
  if info then
    vim.health.ok(string.format("server: %s %s", info.name or "?", info.version or "(no version)"))
  elseif not lsp_client then
    local tail = client.stderr_tail()
    vim.health.error("crush-ls did not start" .. (#tail > 0 and (": " .. table.concat(tail, " | ")) or "; see :LspLog"), fixes())
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

-- Servers still connecting are waited for (up to the timeout), so that a failure shows.
local function check_mcp()
  local result, err
  vim.wait(STARTUP_TIMEOUT_MS, function()
    result, err = client.request_sync("agent/mcpServers", {}, STARTUP_TIMEOUT_MS)
    if not result then
      return true
    end
    for _, server in ipairs(result.servers) do
      if server.state == "starting" then
        return false
      end
    end
    return true
  end, 200)
  if not result then
    vim.health.warn("MCP servers: " .. (err and err.message or "agent/mcpServers gave no answer"))
    return
  end
  if #result.servers == 0 then
    vim.health.info("MCP servers: none configured")
  end
  local lines = require("crush").mcp_lines(result.servers)
  for i, server in ipairs(result.servers) do
    if server.state == "failed" then
      vim.health.error("MCP server " .. lines[i], { "Fix the `mcp` entry in crush.json or init_options.mcp" })
    elseif server.state == "connected" then
      vim.health.ok("MCP server " .. lines[i])
    else
      vim.health.info("MCP server " .. lines[i])
    end
  end
end

function M.check()
  vim.health.start("crush")
  vim.health.info("Neovim " .. tostring(vim.version()))
  local cmd = config.cmd()
  if check_command(cmd) then
    check_doctor(cmd)
    check_server()
    check_mcp()
  end
end

return M

-- :CrushInstall: a virtual environment in stdpath("data")/crush-ls/venv with
-- crush-ls installed into it, from the repository this plugin lives in (or
-- `install.package` of setup(): a wheel, a source folder or a package spec).
local config = require("crush.config")

local M = {}

local MIN_PYTHON = { 3, 11 }
M.HOW_TO_GET_PYTHON = "install Python 3.11+ (https://www.python.org/downloads/; Debian/Ubuntu: "
  .. "`sudo apt install python3 python3-venv`; macOS: `brew install python@3.12`) "
  .. "or set `install = { python = '/path/to/python3' }` in require('crush').setup()"

local is_win = vim.fn.has("win32") == 1

function M.venv()
  return vim.fs.joinpath(vim.fn.stdpath("data"), "crush-ls", "venv")
end

local function bin(venv, name)
  return is_win and vim.fs.joinpath(venv, "Scripts", name .. ".exe") or vim.fs.joinpath(venv, "bin", name)
end

-- The crush-ls of an earlier :CrushInstall, if any.
function M.installed_server()
  local server = bin(M.venv(), "crush-ls")
  return vim.fn.executable(server) == 1 and server or nil
end

-- The repository holding this plugin (editors/nvim/lua/crush/install.lua -> 4 folders up).
local function source_folder()
  local here = debug.getinfo(1, "S").source:sub(2)
  local root = vim.fn.fnamemodify(here, ":p:h:h:h:h:h")
  return vim.fn.filereadable(vim.fs.joinpath(root, "pyproject.toml")) == 1 and root or nil
end

function M.package_spec()
  local opts = config.options.install or {}
  if opts.package and opts.package ~= "" then
    return opts.package
  end
  local root = source_folder()
  return root and (root .. "[local]") or nil
end

local function tail(result, n)
  local lines = vim.split(vim.trim((result.stdout or "") .. "\n" .. (result.stderr or "")), "\n", { trimempty = true })
  return table.concat(vim.list_slice(lines, math.max(1, #lines - (n or 3) + 1)), " | ")
end

-- `python -c` prints its version; nil, why when no candidate is 3.11+.
function M.find_python()
  local opts = config.options.install or {}
  local candidates = opts.python and { opts.python } or (is_win and { "py", "python" } or { "python3", "python" })
  local found = {}
  for _, candidate in ipairs(candidates) do
    if vim.fn.executable(candidate) == 1 then
      local result = vim.system({ candidate, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])" }, { text = true }):wait(30000)
      local version = result.code == 0 and vim.trim(result.stdout or "") or nil
      local major, minor = (version or ""):match("^(%d+)%.(%d+)")
      major, minor = tonumber(major), tonumber(minor)
      if major and (major > MIN_PYTHON[1] or (major == MIN_PYTHON[1] and minor >= MIN_PYTHON[2])) then
        return candidate
      end
      table.insert(found, string.format("%s is Python %s", candidate, version or "?"))
    end
  end
  local why = #found > 0 and table.concat(found, ", ") or ("no Python found (tried " .. table.concat(candidates, ", ") .. ")")
  return nil, "crush-ls needs Python 3.11 or newer: " .. why .. "; " .. M.HOW_TO_GET_PYTHON
end

local function notify(message, level)
  vim.schedule(function()
    vim.notify("crush: " .. message, level or vim.log.levels.INFO)
  end)
end

local function finish(ok, detail)
  vim.schedule(function()
    if ok then
      vim.notify("crush: crush-ls is installed: " .. detail, vim.log.levels.INFO)
    else
      vim.notify("crush: :CrushInstall failed: " .. detail, vim.log.levels.ERROR)
    end
    vim.api.nvim_exec_autocmds("User", { pattern = "CrushInstalled", data = { ok = ok, detail = detail } })
  end)
end

-- Runs the steps one after the other (each a vim.system); `opts.wait` blocks until done (lazy.nvim's build).
function M.install(opts)
  opts = opts or {}
  local python, why = M.find_python()
  if not python then
    return finish(false, why)
  end
  local spec = opts.package or M.package_spec()
  if not spec then
    return finish(false, "the plugin is not inside a crush-ls checkout: set `install = { package = "
      .. "'/path/to/crush_ls.whl' }` (a wheel, a folder or a package spec) in require('crush').setup()")
  end
  local venv = M.venv()
  local server = bin(venv, "crush-ls")
  local steps = {
    { "creating a virtual environment in " .. venv, { python, "-m", "venv", "--clear", venv },
      " (Debian/Ubuntu: `sudo apt install python3-venv`)" },
    { "installing " .. spec .. " (pip; this can take a few minutes)",
      { bin(venv, "python"), "-m", "pip", "install", "--disable-pip-version-check", spec }, "" },
    { "checking the server", { server, "--version" }, "" },
  }
  local done = false
  local function run(i)
    if i > #steps then
      done = true
      return finish(true, server)
    end
    local label, cmd, hint = unpack(steps[i])
    notify(label .. "…")
    vim.system(cmd, { text = true }, function(result)
      if result.code ~= 0 then
        done = true
        return finish(false, string.format("`%s` exited with code %d: %s%s", table.concat(cmd, " "), result.code, tail(result), hint))
      end
      run(i + 1)
    end)
  end
  run(1)
  if opts.wait then
    vim.wait(30 * 60 * 1000, function() return done end, 100)
  end
end

return M

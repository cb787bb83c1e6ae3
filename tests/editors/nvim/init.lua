-- Test harness: `nvim --headless --clean -u init.lua` with the environment set
-- by tests/editors/test_nvim.py. Loads the plugin, runs one case from cases.lua
-- and writes {ok, result | error} as JSON to $CRUSH_NVIM_RESULT, then quits.
local env = vim.env
vim.opt.runtimepath:prepend(env.CRUSH_NVIM_PLUGIN)
vim.opt.shadafile = "NONE"
vim.opt.swapfile = false
vim.cmd("runtime plugin/crush.lua")

local cmd = vim.json.decode(env.CRUSH_NVIM_CMD)
require("crush").setup({
  cmd = cmd ~= vim.NIL and cmd or nil, -- null: the plugin's default (installed venv, else $PATH)
  init_options = vim.json.decode(env.CRUSH_NVIM_INIT_OPTIONS),
  install = { package = env.CRUSH_NVIM_INSTALL_PACKAGE, python = env.CRUSH_NVIM_INSTALL_PYTHON },
})

local function write_result(payload)
  local file = assert(io.open(env.CRUSH_NVIM_RESULT, "w"))
  file:write(vim.json.encode(payload))
  file:close()
end

vim.api.nvim_create_autocmd("VimEnter", {
  once = true,
  callback = function()
    vim.schedule(function()
      local cases = dofile(env.CRUSH_NVIM_TESTS .. "/cases.lua")
      local case = assert(cases[env.CRUSH_NVIM_CASE], "no case " .. env.CRUSH_NVIM_CASE)
      local ok, result = xpcall(case, debug.traceback)
      write_result(ok and { ok = true, result = result } or { ok = false, error = result })
      vim.cmd("qa!")
    end)
  end,
})

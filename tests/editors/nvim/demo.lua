-- Interactive demo config (used by screenshot.py, handy by hand too):
--   CRUSH_NVIM_PLUGIN=editors/nvim CRUSH_NVIM_CMD='["crush-ls"]' \
--   CRUSH_NVIM_INIT_OPTIONS='{"model":{"provider":"echo"}}' nvim -u demo.lua FILE
-- Opens the chat and, when $CRUSH_NVIM_DEMO_PROMPT is set, sends it.
local env = vim.env
vim.opt.runtimepath:prepend(env.CRUSH_NVIM_PLUGIN)
vim.opt.shadafile = "NONE"
vim.opt.swapfile = false
vim.opt.termguicolors = true
vim.o.background = "dark"
vim.opt.number = true
vim.opt.laststatus = 2
vim.cmd("runtime plugin/crush.lua")

require("crush").setup({
  cmd = vim.json.decode(env.CRUSH_NVIM_CMD or '["crush-ls"]'),
  init_options = vim.json.decode(env.CRUSH_NVIM_INIT_OPTIONS or "{}"),
  chat = { width = tonumber(env.CRUSH_NVIM_CHAT_WIDTH or "70") },
})

vim.api.nvim_create_autocmd("VimEnter", {
  once = true,
  callback = function()
    vim.cmd("CrushChat")
    vim.cmd("stopinsert")
    if env.CRUSH_NVIM_DEMO_PROMPT then
      require("crush").send(env.CRUSH_NVIM_DEMO_PROMPT)
    end
  end,
})

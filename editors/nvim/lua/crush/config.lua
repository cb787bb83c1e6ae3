-- Options of the crush plugin: defaults merged with what setup() is given.
local M = {}

M.defaults = {
  -- The server command, started through Neovim's LSP client. nil: the crush-ls
  -- that :CrushInstall installed, else `crush-ls` on $PATH.
  cmd = nil,
  -- :CrushInstall: the Python that creates the venv (nil: python3, then python) and
  -- what pip installs (nil: the crush-ls repository this plugin lives in, with [local]).
  install = { python = nil, package = nil },
  -- Sent as `initializationOptions` (model, permissions, dataDirectory, ...).
  init_options = {},
  -- The project root is the nearest folder holding one of these, else the cwd.
  root_markers = { ".git", "crush.json", ".crush.json" },
  chat = {
    position = "right", -- "right" (vertical split) or "bottom"
    width = 80,
    height = 20,
    prompt_height = 5,
  },
  -- Lines of a tool result shown under its call (diffs are shown whole, folded).
  result_lines = 8,
  -- Follow the agent: show each file it edits, at the change, in a file window
  -- (the focus stays where it is). Sent as initializationOptions.followAgent.
  follow_agent = false,
  -- How long the crush client holds back your buffer changes before it sends
  -- them (flags.debounce_text_changes). 0: at once, so the agent's edits are
  -- confirmed at once (an edit tool call takes ~17 ms instead of ~140 ms).
  debounce_ms = 0,
}

M.options = vim.deepcopy(M.defaults)

-- The command to start: setup()'s `cmd`, else the installed server, else `crush-ls` on $PATH.
function M.cmd()
  if M.options.cmd then
    return M.options.cmd
  end
  local installed = require("crush.install").installed_server()
  return { installed or "crush-ls" }
end

function M.set(opts)
  M.options = vim.tbl_deep_extend("force", vim.deepcopy(M.defaults), opts or {})
  -- A list is replaced, never merged element by element.
  for _, key in ipairs({ "cmd", "root_markers" }) do
    if opts and opts[key] then
      M.options[key] = vim.deepcopy(opts[key])
    end
  end
  return M.options
end

return M

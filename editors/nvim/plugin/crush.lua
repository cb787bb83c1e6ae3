-- Commands exist as soon as the plugin is on 'runtimepath'; setup() is only
-- needed to change the defaults (server command, initializationOptions).
if vim.g.loaded_crush then
  return
end
vim.g.loaded_crush = true
require("crush").create_commands()

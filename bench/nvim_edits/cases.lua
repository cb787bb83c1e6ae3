-- bench/nvim_edits.py's one case, run by tests/editors/nvim/init.lua in a real
-- Neovim: N prompts, each an `edit` of the open buffer hello.py; returns each
-- edit's milliseconds from its tool_call to its tool_result.
local crush = require("crush")
local args = vim.json.decode(vim.env.CRUSH_NVIM_ARGS or "{}")
local started, took, done = {}, {}, {}

vim.api.nvim_create_autocmd("User", {
  pattern = "CrushNotification",
  callback = function(ev)
    local n = ev.data
    if n.type == "tool_call" and n.toolCall.name == "edit" and not started[n.toolCall.id] then
      started[n.toolCall.id] = vim.uv.hrtime()
    elseif n.type == "tool_result" and n.name == "edit" then
      table.insert(took, (vim.uv.hrtime() - started[n.toolCallId]) / 1e6)
    elseif n.type == "run_complete" then
      done[n.runId] = n
    end
  end,
})

return {
  edits = function()
    require("crush.config").options.debounce_ms = args.debounce_ms
    vim.cmd.edit("hello.py")
    for i = 1, args.edits do
      local run_id = crush.send("[edit " .. i .. "]")
      assert(vim.wait(30000, function() return done[run_id] ~= nil end, 2), "run " .. i .. " did not complete")
      assert(done[run_id].finishReason == "end_turn", vim.inspect(done[run_id]))
    end
    return { took = took, text = vim.api.nvim_buf_get_lines(0, 0, -1, false) }
  end,
}

" The crush://chat buffer.
if exists("b:current_syntax")
  finish
endif
syntax match crushHeader /^## .*$/
syntax match crushTool /^\[tool\] .*$/
syntax match crushToolDone /(completed)$/ contained containedin=crushTool
syntax match crushToolFailed /(\(failed\|canceled\))$/ contained containedin=crushTool
syntax match crushToolAsk /(awaiting_permission)$/ contained containedin=crushTool
syntax match crushResult /^  │ .*$/
syntax match crushResultError /^  ! .*$/
syntax match crushDiffAdd /^  ┊ +.*$/
syntax match crushDiffDel /^  ┊ -.*$/
syntax match crushDiff /^  ┊ @@.*$/
syntax match crushReasoning /^> .*$/
syntax match crushError /^\[error\].*$/
syntax match crushNote /^\[\(canceled\|stopped\|crush-ls\).*$/
highlight default link crushHeader Title
highlight default link crushTool Function
highlight default link crushToolDone DiagnosticOk
highlight default link crushToolFailed DiagnosticError
highlight default link crushToolAsk DiagnosticWarn
highlight default link crushResult Comment
highlight default link crushResultError DiagnosticError
highlight default link crushDiffAdd DiffAdd
highlight default link crushDiffDel DiffDelete
highlight default link crushDiff DiffChange
highlight default link crushReasoning Comment
highlight default link crushError ErrorMsg
highlight default link crushNote WarningMsg
let b:current_syntax = "crush"

// The scripted model both test files give crush-ls (PROTOCOL.md section 7):
// the first response whose `when` is a substring of the prompt plays.

export const SLOW_TEXT = 'tick '.repeat(200);

/** Views a file, then changes it with `tool` (edit and multiedit refuse a file not viewed first). */
function viewThen(when: string, file: string, tool: { name: string; input: object }, reply: string) {
  return [
    { when, step: 0, events: [{ toolCall: { name: 'view', input: { file_path: file } } }] },
    { when, step: 1, events: [{ toolCall: tool }] },
    { when, step: 2, events: [{ text: reply }] },
  ];
}

export const SCRIPT = {
  responses: [
    // The E2E's editor tests (prompts chosen to match none of the others).
    ...viewThen('edit the open file', 'undo.txt', { name: 'edit', input: { file_path: 'undo.txt', old_string: 'beta', new_string: 'BETA' } }, 'Edited undo.txt.'),
    ...viewThen('change two places', 'hunks.txt', {
      name: 'multiedit',
      input: { file_path: 'hunks.txt', edits: [{ old_string: 'line 2\n', new_string: 'LINE 2\n' }, { old_string: 'line 11\n', new_string: 'LINE 11\n' }] },
    }, 'Changed two places.'),
    ...viewThen('replace the rewind file', 'rewind.txt', { name: 'edit', input: { file_path: 'rewind.txt', old_string: 'original', new_string: 'changed by the agent' } }, 'Replaced it.'),
    { when: 'check the problems', step: 0, events: [{ toolCall: { name: 'diagnostics', input: { file_path: 'broken.json' } } }] },
    { when: 'check the problems', step: 1, events: [{ text: 'Checked the problems.' }] },
    { when: 'slow', events: [{ text: SLOW_TEXT, chunkSize: 5, delayMs: 50 }] },
    { when: 'hostname', step: 0, events: [{ toolCall: { name: 'view', input: { file_path: '/etc/hostname' } } }] },
    { when: 'hostname', step: 1, events: [{ text: 'Viewed the host name.' }] },
    { when: 'write', step: 0, events: [{ toolCall: { name: 'write', input: { file_path: 'a.txt', content: 'x\n' } } }] },
    { when: 'write', step: 1, events: [{ text: 'Wrote a.txt.' }] },
    { when: 'fail', events: [{ error: 'scripted failure', retryable: false }] },
    { when: 'panel', events: [{ text: 'Answer **for the chat panel** from crush-ls', chunkSize: 4, delayMs: 20 }] },
    { events: [{ text: 'Hello from the script', chunkSize: 3, delayMs: 100 }] },
  ],
};

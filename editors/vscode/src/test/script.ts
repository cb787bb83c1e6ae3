// The scripted model both test files give crush-ls (PROTOCOL.md section 7):
// the first response whose `when` is a substring of the prompt plays.

export const SLOW_TEXT = 'tick '.repeat(200);

export const SCRIPT = {
  responses: [
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

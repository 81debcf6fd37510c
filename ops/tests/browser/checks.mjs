// Helpers the browser scripts share: bounded waits, a hard time limit, and a
// checklist that logs every check and keeps the failed ones.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Polls `fn` every `stepMs` until it returns something truthy (returned),
// or throws after `timeoutMs`.
export async function until(what, fn, timeoutMs, stepMs = 200) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await fn();
    if (value) return value;
    await sleep(stepMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

// Ends the process with code 3 after `ms`: the last resort of a script
// whose every wait is bounded already.
export function hardLimit(script, ms) {
  setTimeout(() => {
    console.error(`${script}: still running after ${ms} ms; giving up`);
    process.exit(3);
  }, ms).unref();
}

// `log` writes to stderr with the seconds since the start; `check` logs a
// condition as ok or FAILED, and `failures` lists the messages that failed.
export function checklist() {
  const started = Date.now();
  const log = (...args) => console.error(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)} s]`, ...args);
  const failures = [];
  const check = (condition, message) => {
    if (condition) log('ok:', message);
    else { log('FAILED:', message); failures.push(message); }
  };
  return { log, check, failures };
}

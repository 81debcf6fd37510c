// Headless Debian Chromium for the browser tests, with a fresh profile and
// the flags this machine needs: no sandbox as root, no GPU, and no
// background networking (the network beyond loopback is closed).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

// `env`: the browser's environment (e.g. a HOME whose NSS db trusts a CA).
export async function launchChromium(executablePath, viewport, env = undefined) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hlscdn-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport,
    env,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  return { context, profile };
}

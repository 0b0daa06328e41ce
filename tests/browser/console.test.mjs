// The office console in a real headless Chromium (Debian's `chromium`,
// driven by playwright-core) against the running local cloud: sign-in, a
// direct message that ends delivered, a scheduled one canceled, a failed
// one's explanation, a patient's text answered from the Inbox, and a bulk
// message with its acknowledgment and progress. It writes a screenshot of
// each screen into docs/console/ as it goes.
//
// Run by `make test` (infra/local.py) after the Rust tests; by hand, with
// `make dev` up: `node --test tests/browser/console.test.mjs`.
// Environment: ENDPOINTS_FILE (default .local/endpoints.json), CHROMIUM
// (default /usr/bin/chromium), SCREENSHOTS (default docs/console).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const endpoints = JSON.parse(readFileSync(process.env.ENDPOINTS_FILE || join(ROOT, '.local', 'endpoints.json'), 'utf8'));
const SHOTS = process.env.SCREENSHOTS || join(ROOT, 'docs', 'console');
const WAIT = { timeout: 60_000 };
// A 48×48 picture a patient sends (an MMS).
const PICTURE = 'iVBORw0KGgoAAAANSUhEUgAAADAAAAAwCAIAAADYYG7QAAAAbUlEQVR42u3YuRHAIAwFUYqhM7dKVT9y7MgDOizw7lDASzQIWr9GqdMAAQIECJA7SM8+A+mtPJBmCgdpvkCQVgsBydbpIHkEKA0kvwABqgFi7HcEcbnuuA9V3Bgr7tSAzC9DQID4jgEECNDPQTf4EQ+HTUKmcgAAAABJRU5ErkJggg==';

let browser;
let page;
const practice = {};
const problems = [];

function rand(lo, hi) { return lo + Math.floor(Math.random() * (hi - lo + 1)); }
// A valid NANP number; the simulator delivers it unless its last four
// digits are a carrier error code (then it fails with that code).
function phone(lastFour) {
  const four = lastFour ?? String(rand(0, 3999)).padStart(4, '0');
  return `+1${rand(2, 9)}${rand(2, 8)}${rand(0, 9)}${rand(2, 9)}${rand(2, 9)}${rand(0, 9)}${four}`;
}

// The practice-administration command, as an operator runs it.
function admin(args, extraEnv = {}) {
  const out = execFileSync(join(ROOT, 'target', 'local', 'practice-admin'), args, {
    env: {
      ...process.env,
      AWS_ENDPOINT_URL: endpoints.aws_endpoint_url,
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_REGION: 'us-east-1',
      TABLE_NAME: endpoints.table_name,
      ...extraEnv,
    },
    encoding: 'utf8',
  });
  return JSON.parse(out);
}

async function apiCall(method, path, body) {
  const r = await fetch(endpoints.api_url + path, {
    method,
    headers: { Authorization: `Bearer ${practice.key}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(r.ok, `${method} ${path}: ${r.status} ${await r.clone().text()}`);
  return r.status === 204 ? null : r.json();
}

// A screenshot of the screen as it stands (notices cleared, so they hide nothing).
async function shot(name) {
  await page.evaluate(() => document.getElementById('toast').replaceChildren());
  await page.screenshot({ path: join(SHOTS, `${name}.png`) });
}

async function go(screen) {
  await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name: screen, exact: false }).click();
  await page.getByRole('heading', { level: 1, name: screen }).waitFor(WAIT);
}

// The Communication row of the message whose content is `text`.
function commRow(text) {
  return page.locator('tbody tr[data-id]', { hasText: text });
}

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // A practice of its own (quiet hours off, so a bulk goes out whatever the
  // hour), with an admin to sign in as, made with the admin command.
  const created = admin(['create', '--name', 'Bright Smiles Dental', '--timezone', 'America/New_York',
    '--main', phone(), '--alt', phone(), '--quiet-hours', 'off']);
  practice.id = created.practice_id;
  practice.key = created.api_key;
  practice.main = created.settings.channels.sms_main;
  practice.user = `dana-${practice.id.slice(0, 8)}`;
  practice.password = 'correct horse battery staple';
  admin(['add-staff', '--practice-id', practice.id, '--user', practice.user, '--name', 'Dana Reyes', '--role', 'admin'],
    { STAFF_PASSWORD: practice.password });
  practice.ana = phone();
  practice.bo = phone('4720');
  const patients = [
    ['p-ana', 'Ana', 'Diaz', practice.ana, '1988-03-14'],
    ['p-bo', 'Bo', 'Lindqvist', practice.bo, '1979-11-02'],
    ['p-cy', 'Cy', 'Okafor', phone(), '2001-06-30'],
    ['p-dee', 'Dee', 'Marsh', phone(), '1995-01-21'],
    ['p-eli', 'Eli', 'Novak', phone(), '1962-09-08'],
  ];
  for (const [pid, first, last, number, born] of patients) {
    await apiCall('PUT', `/v1/patients/${pid}`, { first_name: first, last_name: last, phone: number, birth_date: born });
  }

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
  });
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 }, locale: 'en-US' });
  page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content Security Policy|Refused to|Uncaught/.test(m.text())) problems.push(m.text());
  });
});

after(async () => {
  await browser?.close();
});

test('the demo staff account from endpoints.json signs in', async () => {
  const context = await browser.newContext({ viewport: { width: 1024, height: 768 } });
  const demo = await context.newPage();
  await demo.goto(endpoints.console.url);
  await demo.getByLabel('User name').fill(endpoints.console.user);
  await demo.getByLabel('Password').fill(endpoints.console.password);
  await demo.getByRole('button', { name: 'Sign in' }).click();
  await demo.getByRole('heading', { level: 1, name: 'Inbox' }).waitFor(WAIT);
  await context.close();
});

test('sign-in: a wrong password is refused in the API\'s words, the right one opens the Inbox', async () => {
  await page.goto(endpoints.console.url);
  await page.getByRole('heading', { name: 'Office console' }).waitFor(WAIT);
  await page.getByLabel('User name').fill(practice.user);
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('alert').filter({ hasText: 'The user name or password is not right' }).waitFor(WAIT);
  await shot('sign-in');
  await page.getByLabel('Password').fill(practice.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Inbox' }).waitFor(WAIT);
  await page.getByText('Signed in as Dana Reyes (admin)').waitFor(WAIT);
  // The cookie is the API's session, HttpOnly: no script can read it.
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'pm_session');
  assert.ok(session, 'session cookie set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  assert.equal(await page.evaluate(() => document.cookie), '');
});

test('Quick Messages: one is saved for later replies', async () => {
  await go('Quick Messages');
  await page.getByLabel('Name').fill('See you at 3');
  await page.getByLabel('Message', { exact: true }).fill('Hi {first_name}, 3 pm works. See you then! {practice_name}');
  await page.getByText(/characters · GSM-7 · 1 segment$/).waitFor(WAIT);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.locator('tbody').getByText('See you at 3').waitFor(WAIT);
  await shot('quick-messages');
});

test('a direct message to a patient ends delivered', async () => {
  await go('Patients');
  await page.getByRole('button', { name: 'Actions for Ana Diaz' }).waitFor(WAIT);
  await shot('patients');
  // By keyboard: the 3-dot menu opens on Enter with its first item focused.
  await page.getByRole('button', { name: 'Actions for Ana Diaz' }).focus();
  await page.keyboard.press('Enter');
  const item = page.getByRole('menuitem', { name: 'Send a direct message' });
  await item.waitFor(WAIT);
  assert.equal(await item.evaluate((el) => el === document.activeElement), true);
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', { name: 'Send a direct message' });
  await dialog.waitFor(WAIT);
  assert.equal(await dialog.getByLabel('Message', { exact: true }).evaluate((el) => el === document.activeElement), true,
    'the message field has the focus');
  await dialog.getByLabel('Message', { exact: true }).fill('Hi {first_name}, your crown is ready. Call us to book.');
  // Merge fields previewed for the patient; the counter follows the text.
  await dialog.getByText('Hi Ana, your crown is ready. Call us to book.').waitFor(WAIT);
  await dialog.getByText(/^\d+ \/ 1600 characters · GSM-7 · 1 segment$/).waitFor(WAIT);
  await dialog.getByLabel(/Main SMS number/).check();
  await shot('compose');
  await dialog.getByRole('button', { name: 'Send', exact: true }).click();
  await page.getByText('Message queued').waitFor(WAIT);
  await go('Communication');
  const row = commRow('your crown is ready');
  await row.getByText('delivered', { exact: true }).waitFor(WAIT);
  const texts = await (await fetch(`${endpoints.carrier_url}/_sim/messages?to=${encodeURIComponent(practice.ana)}`)).json();
  assert.ok(texts.some((m) => m.text === 'Hi Ana, your crown is ready. Call us to book.'), 'the carrier got the rendered text');
});

test('a scheduled message is canceled from the Communication dashboard', async () => {
  await go('Patients');
  await page.getByRole('button', { name: 'Actions for Ana Diaz' }).click();
  await page.getByRole('menuitem', { name: 'Send a direct message' }).click();
  const dialog = page.getByRole('dialog', { name: 'Send a direct message' });
  await dialog.getByLabel('Message', { exact: true }).fill('Reminder: cleaning tomorrow at 9.');
  await dialog.getByLabel('Schedule for Future').check();
  await dialog.getByLabel('Time', { exact: true }).fill('10:30');
  await dialog.getByRole('button', { name: 'Send', exact: true }).click();
  await page.getByText(/^Scheduled for .*10:30 AM\.$/).waitFor(WAIT);
  await go('Communication');
  const row = commRow('Reminder: cleaning tomorrow');
  await row.getByText('scheduled', { exact: true }).first().waitFor(WAIT);
  // Rescheduled first, in practice time...
  await row.getByRole('button', { name: 'Reschedule' }).click();
  const again = page.getByRole('dialog', { name: 'Reschedule the message' });
  await again.getByLabel('Time', { exact: true }).fill('11:15');
  await again.getByRole('button', { name: 'Save' }).click();
  await row.getByText(/11:15 AM/).waitFor(WAIT);
  // ...then canceled.
  page.once('dialog', (d) => d.accept());
  await row.getByRole('button', { name: 'Cancel' }).click();
  await row.getByText('canceled', { exact: true }).waitFor(WAIT);
});

test('a failed message shows the carrier error\'s title and what to do', async () => {
  await go('Patients');
  await page.getByRole('button', { name: 'Actions for Bo Lindqvist' }).click();
  await page.getByRole('menuitem', { name: 'Send a direct message' }).click();
  const dialog = page.getByRole('dialog', { name: 'Send a direct message' });
  await dialog.getByLabel('Message', { exact: true }).fill('Hi {first_name}, please confirm Tuesday.');
  await dialog.getByRole('button', { name: 'Send', exact: true }).click();
  await page.getByText('Message queued').waitFor(WAIT);
  await go('Communication');
  const row = commRow('please confirm Tuesday');
  await row.getByText('failed', { exact: true }).waitFor(WAIT);
  await row.getByRole('button', { name: 'Show the 1 recipient' }).click();
  const details = page.locator('tr[data-details]:not([hidden])');
  await details.getByText('Carrier rejected as invalid destination address (4720)').waitFor(WAIT);
  await details.getByText(/^What to do: /).waitFor(WAIT);
  await shot('communication');
});

test('a patient\'s text and picture are answered from the Inbox with a Quick Message', async () => {
  const r = await fetch(`${endpoints.carrier_url}/_sim/inbound`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ from: practice.ana, to: practice.main, text: 'Can I come at 3 instead? Here is the bill.', media: [{ content_type: 'image/png', base64: PICTURE }] }),
  });
  assert.equal(r.status, 202);
  await go('Inbox');
  const conversation = page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /Ana Diaz/ });
  await conversation.getByText('1 unread').waitFor(WAIT);
  await conversation.click();
  const chat = page.getByRole('region', { name: 'Patient Chat' });
  await chat.getByText('Can I come at 3 instead? Here is the bill.').waitFor(WAIT);
  await chat.getByRole('img', { name: /Picture sent by the patient/ }).waitFor(WAIT);
  await chat.getByLabel('Load a Quick Message').selectOption({ label: 'See you at 3' });
  await chat.getByRole('button', { name: 'Send reply' }).click();
  const reply = chat.getByRole('listitem').filter({ hasText: 'Hi Ana, 3 pm works. See you then! Bright Smiles Dental' });
  await reply.getByText('delivered', { exact: true }).waitFor(WAIT);
  await chat.getByLabel('Assigned to').selectOption({ label: 'Dana Reyes' });
  await page.getByText('Assigned to Dana Reyes.').waitFor(WAIT);
  await shot('inbox');
  const texts = await (await fetch(`${endpoints.carrier_url}/_sim/messages?to=${encodeURIComponent(practice.ana)}`)).json();
  assert.ok(texts.some((m) => m.text === 'Hi Ana, 3 pm works. See you then! Bright Smiles Dental'));
  // Closing moves it out of the open conversations.
  await chat.getByRole('button', { name: 'Close', exact: true }).click();
  await page.getByText('Conversation closed.').waitFor(WAIT);
  await chat.getByRole('button', { name: 'Reopen' }).waitFor(WAIT);
});

test('staff opt a number out from Patient Chat; it can no longer be texted', async () => {
  await go('Inbox');
  await page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /Bo Lindqvist/ }).click();
  const chat = page.getByRole('region', { name: 'Patient Chat' });
  await chat.getByRole('heading', { name: /Bo Lindqvist/ }).waitFor(WAIT);
  page.once('dialog', (d) => d.accept());
  await chat.getByRole('button', { name: 'Opt out of texts' }).click();
  await chat.getByText('Opted out of texts').waitFor(WAIT);
  assert.equal(await chat.getByRole('button', { name: 'Send reply' }).isDisabled(), true);
  const patient = await apiCall('GET', '/v1/patients/p-bo');
  assert.equal(patient.sms_opted_out, true);
});

test('a bulk message needs the acknowledgment, then shows its progress to completion', async () => {
  await go('Patients');
  for (const name of ['Cy Okafor', 'Dee Marsh', 'Eli Novak']) {
    await page.getByRole('checkbox', { name: `Select ${name}` }).check();
  }
  await page.getByText('3 selected').waitFor(WAIT);
  await page.getByRole('button', { name: 'Bulk Action' }).click();
  const dialog = page.getByRole('dialog', { name: /Bulk Action/ });
  await dialog.getByLabel('Message', { exact: true }).fill('Hi {first_name}, the office is closed Friday for training.');
  await dialog.getByText(/limited to 250 messages per hour/).waitFor(WAIT);
  await dialog.getByRole('button', { name: 'Send', exact: true }).click();
  // Refused by the API, its words shown next to the checkbox.
  const ackError = dialog.locator('.ack .field-error');
  await ackError.filter({ hasText: /acknowledge/i }).waitFor(WAIT);
  await dialog.getByRole('checkbox', { name: /I acknowledge/ }).check();
  await dialog.getByRole('button', { name: 'Send', exact: true }).click();
  await dialog.getByText('Bulk message accepted for 3 patients.').waitFor(WAIT);
  await dialog.getByText(/at most 250 per hour\. Estimated completion: /).waitFor(WAIT);
  await shot('bulk');
  await dialog.getByRole('link', { name: 'Follow its progress in Communication' }).click();
  await page.getByRole('heading', { level: 1, name: 'Communication' }).waitFor(WAIT);
  const row = commRow('closed Friday for training');
  await row.locator('progress').waitFor(WAIT);
  await row.getByText('completed', { exact: true }).waitFor({ timeout: 90_000 });
  await row.getByText('3 delivered · 0 failed · 0 skipped · 0 to go').waitFor(WAIT);
  await shot('communication-bulk');
});

test('settings: the after-hours reply is saved; an error is shown next to its field', async () => {
  await go('Settings');
  await page.getByLabel('Answer texts that arrive outside office hours').check();
  await page.getByLabel('Reply text').fill('{practice_name} is closed now; we will answer in the morning.');
  await page.getByLabel('Monday closes').fill('07:00');
  await page.getByRole('button', { name: 'Save settings' }).click();
  // Monday closes before it opens: the API names the field, shown beside it.
  await page.locator('#f-auto_reply-office_hours-mon-close-error, #f-auto_reply-office_hours-mon-open-error').filter({ hasText: /./ }).first().waitFor(WAIT);
  await page.getByLabel('Monday closes').fill('17:00');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText('Settings saved.').waitFor(WAIT);
  await page.getByRole('heading', { name: 'Staff accounts' }).waitFor(WAIT);
  await shot('settings');
});

test('sign-out ends the session', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByRole('button', { name: 'Sign in' }).waitFor(WAIT);
  await page.reload();
  await page.getByRole('button', { name: 'Sign in' }).waitFor(WAIT);
  assert.deepEqual(problems, [], 'no script errors or CSP violations');
});

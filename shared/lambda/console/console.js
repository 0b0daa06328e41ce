// The office console: the seed's screens on top of the public API, signed in
// with a staff session cookie. Plain JavaScript, no framework, no build step,
// nothing fetched from elsewhere. Every request goes to this deployment's own
// /v1 routes; every change carries `X-Requested-With: console` (CSRF guard).
'use strict';
(function () {
  // The API lives where the console does: {api}/console -> {api}/v1/...
  const BASE = location.pathname.replace(/\/console\/?$/, '');
  const app = document.getElementById('app');
  const toastBox = document.getElementById('toast');
  const state = { session: null, settings: null, staff: [], templates: null, timer: null, fmt: null, day: null };
  const FINAL = ['delivered', 'failed', 'canceled', 'skipped'];
  const DAYS = [['mon', 'Monday'], ['tue', 'Tuesday'], ['wed', 'Wednesday'], ['thu', 'Thursday'], ['fri', 'Friday'], ['sat', 'Saturday'], ['sun', 'Sunday']];

  // ------------------------------------------------------------------ API
  class ApiError extends Error {
    constructor(status, body) {
      const e = (body && body.error) || {};
      super(e.message || (body && body.message) || 'The request failed (HTTP ' + status + ').');
      this.status = status;
      this.code = e.code || 'http_' + status;
      this.field = e.field || null;
    }
  }

  async function api(method, path, body) {
    const init = { method: method, credentials: 'same-origin', headers: { 'X-Requested-With': 'console' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let r;
    try {
      r = await fetch(BASE + path, init);
    } catch (_) {
      throw new ApiError(0, { error: { message: 'The console cannot reach the server. Check the connection and try again.' } });
    }
    if (r.status === 204) return null;
    let data = null;
    try { data = await r.json(); } catch (_) { data = null; }
    if (!r.ok) {
      const err = new ApiError(r.status, data);
      if (r.status === 401 && state.session && path.indexOf('/v1/sessions') !== 0) {
        state.session = null;
        showSignIn('Your session has ended. Sign in again.');
      }
      throw err;
    }
    return data;
  }

  function query(params) {
    const q = Object.keys(params).filter(function (k) { return params[k] !== '' && params[k] != null; })
      .map(function (k) { return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]); });
    return q.length ? '?' + q.join('&') : '';
  }

  // ------------------------------------------------------------------ DOM
  const PROPS = ['value', 'checked', 'disabled', 'selected', 'hidden', 'open', 'indeterminate'];
  function h(tag, props) {
    const el = document.createElement(tag);
    const p = props || {};
    Object.keys(p).forEach(function (k) {
      const v = p[k];
      if (v == null || v === false) return;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
      else if (PROPS.indexOf(k) >= 0) el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    });
    for (let i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, kid) {
    if (kid == null || kid === false) return;
    if (Array.isArray(kid)) { kid.forEach(function (k) { add(el, k); }); return; }
    el.append(kid.nodeType ? kid : String(kid));
  }
  // Replaces an element's children (arrays flattened, null and false skipped).
  function fill(el) {
    el.replaceChildren();
    for (let i = 1; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  let uid = 0;
  function id(prefix) { uid += 1; return (prefix || 'f') + '-' + uid; }

  // A labelled control with its hint and the place for the API's error about it.
  function field(label, control, hint) {
    if (!control.id) control.id = id('f');
    const err = h('div', { class: 'field-error', id: control.id + '-error', 'aria-live': 'polite' });
    const described = [control.id + '-error'];
    let hintEl = null;
    if (hint) {
      hintEl = h('p', { class: 'hint', id: control.id + '-hint' }, hint);
      described.push(control.id + '-hint');
    }
    control.setAttribute('aria-describedby', described.join(' '));
    return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl, err);
  }

  // Shows an API refusal in the API's own words next to the field it names
  // (`fields` maps API field names to controls), else at the form's top.
  function showError(err, fields, formError) {
    clearErrors(fields, formError);
    const control = err.field && fields[err.field];
    if (control) {
      control.setAttribute('aria-invalid', 'true');
      const box = document.getElementById(control.id + '-error');
      if (box) box.textContent = err.message;
      control.focus();
    } else if (formError) {
      formError.textContent = err.message;
      formError.focus();
    } else {
      toast(err.message);
    }
  }
  function clearErrors(fields, formError) {
    Object.keys(fields).forEach(function (k) {
      const c = fields[k];
      if (!c) return;
      c.removeAttribute('aria-invalid');
      const box = document.getElementById(c.id + '-error');
      if (box) box.textContent = '';
    });
    if (formError) formError.textContent = '';
  }
  function formError() { return h('div', { class: 'form-error', role: 'alert', tabindex: '-1' }); }

  function toast(message) {
    const t = h('div', {}, message);
    toastBox.append(t);
    setTimeout(function () { t.remove(); }, 7000);
  }

  function badge(status, label) { return h('span', { class: 'badge ' + status }, label || status); }

  // A button opening a small menu (the seed's 3-dot menu), usable by keyboard.
  function dotsMenu(label, items) {
    const menu = h('div', { role: 'menu', hidden: true, 'aria-label': label });
    const button = h('button', { type: 'button', 'aria-haspopup': 'menu', 'aria-expanded': 'false', 'aria-label': label, title: label }, '⋮');
    function close(refocus) {
      menu.hidden = true;
      button.setAttribute('aria-expanded', 'false');
      document.removeEventListener('click', outside, true);
      if (refocus) button.focus();
    }
    function outside(e) { if (!wrap.contains(e.target)) close(false); }
    items.forEach(function (it) {
      menu.append(h('button', { type: 'button', role: 'menuitem', tabindex: '-1', onclick: function () { close(false); it.action(); } }, it.text));
    });
    menu.addEventListener('keydown', function (e) {
      const all = Array.prototype.slice.call(menu.querySelectorAll('[role=menuitem]'));
      const at = all.indexOf(document.activeElement);
      if (e.key === 'Escape') { e.preventDefault(); close(true); }
      else if (e.key === 'ArrowDown') { e.preventDefault(); all[(at + 1) % all.length].focus(); }
      else if (e.key === 'ArrowUp') { e.preventDefault(); all[(at - 1 + all.length) % all.length].focus(); }
      else if (e.key === 'Tab') close(false);
    });
    button.addEventListener('click', function () {
      if (!menu.hidden) { close(true); return; }
      menu.hidden = false;
      button.setAttribute('aria-expanded', 'true');
      document.addEventListener('click', outside, true);
      const first = menu.querySelector('[role=menuitem]');
      if (first) first.focus();
    });
    const wrap = h('div', { class: 'menu-wrap' }, button, menu);
    return wrap;
  }

  // A modal dialog (native <dialog>: focus stays inside, Escape closes).
  function openDialog(title, build) {
    const heading = h('h2', { id: id('dlg') }, title);
    const dialog = h('dialog', { 'aria-labelledby': heading.id });
    function close() { dialog.close(); }
    dialog.addEventListener('close', function () { dialog.remove(); });
    dialog.append(heading, build(close));
    document.body.append(dialog);
    dialog.showModal();
    return dialog;
  }

  // ------------------------------------------------------------------ time, in the practice's zone
  function tz() { return state.settings.timezone; }
  function fmtTime(iso) { return iso ? state.fmt.format(new Date(iso)) : ''; }
  function zoneParts(date) {
    const parts = {};
    state.day.formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
    return { y: +parts.year, m: +parts.month, d: +parts.day, H: +parts.hour % 24, M: +parts.minute, S: +parts.second };
  }
  // The instant that is `date` `time` on the practice's clock.
  function zonedInstant(date, time) {
    const d = date.split('-').map(Number);
    const t = time.split(':').map(Number);
    const wall = Date.UTC(d[0], d[1] - 1, d[2], t[0], t[1]);
    let guess = wall;
    for (let i = 0; i < 3; i++) {
      const p = zoneParts(new Date(guess));
      const shown = Date.UTC(p.y, p.m - 1, p.d, p.H, p.M, p.S);
      guess = guess + (wall - shown);
    }
    return new Date(guess);
  }
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function practiceDate(offsetDays) {
    const p = zoneParts(new Date(Date.now() + (offsetDays || 0) * 86400000));
    return p.y + '-' + pad(p.m) + '-' + pad(p.d);
  }
  function zoneLabel() { return 'practice time, ' + tz(); }

  // ------------------------------------------------------------------ texts
  const GSM = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
  const GSM_EXT = '€[]{}^~\\|\f';
  // Encoding and segments exactly as the API counts them (api.md, "Text length").
  function textStats(text) {
    const chars = Array.from(text).length;
    let septets = 0;
    let gsm = true;
    Array.from(text).some(function (c) {
      if (GSM.indexOf(c) >= 0) septets += 1;
      else if (GSM_EXT.indexOf(c) >= 0) septets += 2;
      else { gsm = false; return true; }
      return false;
    });
    if (gsm) return { chars: chars, encoding: 'GSM-7', segments: septets === 0 ? 0 : septets <= 160 ? 1 : Math.ceil(septets / 153), units: septets, perSegment: septets <= 160 ? 160 : 153 };
    const units = text.length;
    return { chars: chars, encoding: 'UCS-2', segments: units <= 70 ? 1 : Math.ceil(units / 67), units: units, perSegment: units <= 70 ? 70 : 67 };
  }
  function counterText(text) {
    const s = textStats(text);
    let line = s.chars + ' / 1600 characters · ' + s.encoding + ' · ' + s.segments + ' segment' + (s.segments === 1 ? '' : 's');
    if (s.encoding === 'UCS-2') line += ' (a character outside GSM-7 makes each segment 70 or 67)';
    return line;
  }
  // Merge fields filled in for one patient, as the API will send it.
  function render(text, patient) {
    const data = {
      first_name: patient && patient.first_name,
      last_name: patient && patient.last_name,
      practice_name: state.settings.name,
      practice_phone: state.settings.channels.sms_main,
    };
    return text.replace(/\{([a-z_]+)\}/g, function (all, name) {
      return Object.prototype.hasOwnProperty.call(data, name) && data[name] ? String(data[name]).trim() : all;
    });
  }
  function phone(e164) {
    const m = /^\+1(\d{3})(\d{3})(\d{4})$/.exec(e164 || '');
    return m ? '(' + m[1] + ') ' + m[2] + '-' + m[3] : (e164 || '');
  }
  function fullName(p) { return [p.first_name, p.last_name].filter(Boolean).join(' '); }
  function staffName(staffId) {
    const s = state.staff.filter(function (x) { return x.id === staffId; })[0];
    return s ? s.name : staffId;
  }
  async function templates(force) {
    if (!state.templates || force) state.templates = (await api('GET', '/v1/templates?limit=200')).items;
    return state.templates;
  }

  // A message editor: Quick Message picker, text, live counter, preview.
  // Sends `template_id` when a loaded Quick Message is sent unchanged.
  function messageEditor(opts) {
    const textarea = h('textarea', { rows: opts.compact ? 2 : 4, maxlength: 1600 });
    const picker = h('select', {}, h('option', { value: '' }, 'Type a message, or choose one…'));
    const counter = h('p', { class: 'counter', 'aria-live': 'polite' });
    const preview = h('div', { class: 'preview', 'aria-live': 'polite' });
    const previewBox = h('div', { hidden: true }, h('p', { class: 'hint' }, opts.previewLabel || 'What the patient gets:'), preview);
    let loaded = null;
    function update() {
      const rendered = opts.patients && opts.patients().length ? longest(textarea.value, opts.patients()) : render(textarea.value, null);
      counter.textContent = counterText(rendered);
      previewBox.hidden = !(opts.patients && opts.patients().length && /\{[a-z_]+\}/.test(textarea.value));
      preview.textContent = rendered;
      if (loaded && textarea.value !== loaded.body) { loaded = null; picker.value = ''; }
    }
    function longest(text, patients) {
      return patients.map(function (p) { return render(text, p); })
        .sort(function (a, b) { return textStats(b).segments - textStats(a).segments || b.length - a.length; })[0];
    }
    picker.addEventListener('change', function () {
      const t = (state.templates || []).filter(function (x) { return x.id === picker.value; })[0];
      if (t) { textarea.value = t.body; loaded = t; }
      else loaded = null;
      update();
      textarea.focus();
    });
    textarea.addEventListener('input', update);
    templates().then(function (list) {
      list.forEach(function (t) { picker.append(h('option', { value: t.id }, t.name)); });
    }).catch(function () { /* the picker stays empty; typing still works */ });
    update();
    return {
      textarea: textarea,
      picker: picker,
      update: update,
      picked: field('Load a Quick Message', picker),
      nodes: [opts.compact ? null : field('Load a Quick Message', picker), field(opts.label || 'Message', textarea, opts.compact ? null : 'Merge fields: {first_name} {last_name} {practice_name} {practice_phone}'), counter, previewBox],
      body: function () { return loaded ? { template_id: loaded.id } : { text: textarea.value }; },
    };
  }

  function channelPicker() {
    const ch = state.settings.channels;
    const name = id('channel');
    const main = h('input', { type: 'radio', name: name, value: 'sms_main', id: name + '-main', checked: true });
    const alt = h('input', { type: 'radio', name: name, value: 'sms_alt', id: name + '-alt', disabled: !ch.sms_alt });
    const set = h('fieldset', {}, h('legend', {}, 'Delivery Channel'),
      h('div', { class: 'check' }, main, h('label', { for: main.id }, 'Main SMS number ' + phone(ch.sms_main))),
      h('div', { class: 'check' }, alt, h('label', { for: alt.id }, ch.sms_alt ? 'Alternate SMS number ' + phone(ch.sms_alt) : 'Alternate SMS number (not set up)')),
      h('div', { class: 'field-error', id: main.id + '-error' }));
    return { node: set, control: main, value: function () { return alt.checked ? 'sms_alt' : 'sms_main'; } };
  }

  // The same choice as a select, for the reply box.
  function channelSelect() {
    const ch = state.settings.channels;
    const select = h('select', {},
      h('option', { value: 'sms_main' }, 'Main ' + phone(ch.sms_main)),
      ch.sms_alt ? h('option', { value: 'sms_alt' }, 'Alternate ' + phone(ch.sms_alt)) : null);
    return { node: field('Delivery Channel', select), control: select, value: function () { return select.value; } };
  }

  function schedulePicker() {
    const toggle = h('input', { type: 'checkbox', id: id('sched') });
    const date = h('input', { type: 'date', value: practiceDate(1), min: practiceDate(0) });
    const time = h('input', { type: 'time', value: '09:00', step: 60 });
    const box = h('div', { class: 'row fields', hidden: true }, field('Date', date), field('Time', time, zoneLabel()));
    toggle.addEventListener('change', function () { box.hidden = !toggle.checked; if (toggle.checked) date.focus(); });
    return {
      node: h('div', {}, h('div', { class: 'check' }, toggle, h('label', { for: toggle.id }, 'Schedule for Future')), box),
      control: date,
      toggle: toggle,
      value: function () { return toggle.checked ? zonedInstant(date.value, time.value).toISOString() : undefined; },
    };
  }

  // ------------------------------------------------------------------ sign-in
  function showSignIn(notice) {
    stopTimer();
    document.title = 'Sign in · Office console';
    const user = h('input', { type: 'text', autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false', required: true });
    const password = h('input', { type: 'password', autocomplete: 'current-password', required: true });
    const err = formError();
    const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
    const form = h('form', { class: 'signin', novalidate: true },
      h('h1', {}, 'Office console'),
      h('p', { class: 'hint' }, 'Sign in with the user name and password your practice gave you.'),
      notice ? h('p', { class: 'form-error', role: 'alert' }, notice) : null,
      err, field('User name', user), field('Password', password), button);
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      button.disabled = true;
      try {
        state.session = await api('POST', '/v1/sessions', { user: user.value, password: password.value });
        await enter();
      } catch (x) {
        showError(x, { user: user, password: password }, err);
        password.value = '';
      } finally {
        button.disabled = false;
      }
    });
    fill(app, h('main', { id: 'main' }, form));
    user.focus();
  }

  async function signOut() {
    try { await api('DELETE', '/v1/sessions/current'); } catch (_) { /* signed out either way */ }
    state.session = null;
    state.templates = null;
    location.hash = '';
    showSignIn();
  }

  // ------------------------------------------------------------------ shell and routing
  const SCREENS = [
    ['inbox', 'Inbox', inboxScreen],
    ['patients', 'Patients', patientsScreen],
    ['communication', 'Communication', communicationScreen],
    ['templates', 'Quick Messages', templatesScreen],
    ['settings', 'Settings', settingsScreen],
  ];
  let main = null;
  let nav = null;

  async function enter() {
    state.settings = await api('GET', '/v1/settings');
    state.fmt = new Intl.DateTimeFormat('en-US', { timeZone: tz(), month: 'short', day: 'numeric', year: 'numeric', hour: 'numeric', minute: '2-digit' });
    state.day = new Intl.DateTimeFormat('en-US', { timeZone: tz(), year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    try { state.staff = (await api('GET', '/v1/staff')).items; } catch (_) { state.staff = []; }
    const s = state.session.staff;
    nav = h('nav', { class: 'menu', 'aria-label': 'Sections' });
    SCREENS.forEach(function (sc) { nav.append(h('a', { href: '#/' + sc[0], 'data-screen': sc[0] }, sc[1])); });
    main = h('main', { id: 'main', tabindex: '-1' });
    fill(app, h('div', { class: 'shell' },
      h('header', { class: 'top' },
        h('span', { class: 'practice' }, state.settings.name),
        h('span', { class: 'tz' }, 'Times in ' + tz()),
        h('span', { class: 'who' }, 'Signed in as ' + s.name + (s.role === 'admin' ? ' (admin)' : '')),
        h('button', { type: 'button', onclick: signOut }, 'Sign out')),
      nav, main));
    if (!location.hash || location.hash === '#') location.hash = '#/inbox';
    else route();
  }

  function stopTimer() { if (state.timer) { clearInterval(state.timer); state.timer = null; } }
  function every(ms, fn) { stopTimer(); state.timer = setInterval(function () { if (!document.hidden) fn(); }, ms); }

  async function route() {
    if (!state.session || !main) return;
    stopTimer();
    const parts = location.hash.replace(/^#\/?/, '').split('/');
    const screen = SCREENS.filter(function (s) { return s[0] === parts[0]; })[0] || SCREENS[0];
    nav.querySelectorAll('a').forEach(function (a) {
      if (a.getAttribute('data-screen') === screen[0]) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
    document.title = screen[1] + ' · ' + state.settings.name;
    fill(main, h('p', { class: 'loading' }, 'Loading…'));
    try {
      await screen[2](main, parts.slice(1));
    } catch (e) {
      if (e.status !== 401) fill(main, h('p', { class: 'form-error', role: 'alert' }, e.message));
    }
  }
  window.addEventListener('hashchange', route);

  // ------------------------------------------------------------------ Inbox and Patient Chat
  async function inboxScreen(root, rest) {
    const openId = rest[0] ? decodeURIComponent(rest[0]) : null;
    const status = h('select', {}, h('option', { value: 'open' }, 'Open'), h('option', { value: 'closed' }, 'Closed'), h('option', { value: '' }, 'All'));
    const unreadOnly = h('input', { type: 'checkbox', id: id('unread') });
    const assignee = h('select', {}, h('option', { value: '' }, 'Anyone'), h('option', { value: state.session.staff.id }, 'Me'));
    state.staff.forEach(function (s) { if (s.id !== state.session.staff.id) assignee.append(h('option', { value: s.id }, s.name)); });
    const list = h('ul', { class: 'convs', 'aria-label': 'Conversations' });
    const chat = h('section', { class: 'chat', 'aria-label': 'Patient Chat' }, h('p', { class: 'empty' }, 'Choose a conversation to read and reply.'));
    fill(root,
      h('h1', {}, 'Inbox'),
      h('div', { class: 'inbox' },
        h('section', { class: 'list', 'aria-label': 'Inbox' },
          h('div', { class: 'filters' },
            field('Status', status), field('Assigned to', assignee),
            h('div', { class: 'check' }, unreadOnly, h('label', { for: unreadOnly.id }, 'Unread only'))),
          list),
        chat));

    async function loadList() {
      const base = { status: status.value, assignee: assignee.value, limit: 50 };
      const unread = (await api('GET', '/v1/conversations' + query(Object.assign({ unread: 'true' }, base)))).items;
      let items = unread;
      if (!unreadOnly.checked) {
        const seen = {};
        unread.forEach(function (c) { seen[c.id] = true; });
        const all = (await api('GET', '/v1/conversations' + query(base))).items;
        items = unread.concat(all.filter(function (c) { return !seen[c.id]; }));
      }
      const unreadTotal = unread.length;
      const link = nav.querySelector('[data-screen=inbox]');
      fill(link, 'Inbox', unreadTotal ? h('span', { class: 'count', 'aria-label': unreadTotal + ' unread' }, unreadTotal) : null);
      // Redrawn only when something changed, so focus and scrolling stay.
      const seenNow = JSON.stringify(items) + openId;
      if (seenNow === shown) return;
      shown = seenNow;
      fill(list, items.length ? items.map(convItem) : [h('li', { class: 'empty' }, 'No conversations here.')]);
    }
    let shown = '';
    function convItem(c) {
      const who = c.patients.length ? c.patients.map(fullName).join(', ') : phone(c.phone);
      const b = h('button', { type: 'button', 'aria-current': c.id === openId ? 'true' : 'false', onclick: function () { location.hash = '#/inbox/' + encodeURIComponent(c.id); } },
        h('div', { class: 'who' }, who,
          c.unread_count ? badge('unread', c.unread_count + ' unread') : null,
          c.awaiting_reply ? badge('awaiting', 'Awaiting reply') : null,
          c.sms_opted_out ? badge('opted-out', 'Opted out') : null,
          c.status === 'closed' ? badge('closed', 'Closed') : null),
        h('div', { class: 'snippet' }, c.last_message ? (c.last_message.direction === 'outbound' ? 'You: ' : '') + c.last_message.text : ''),
        h('div', { class: 'when' }, fmtTime(c.last_activity_at), c.assignee ? ' · ' + staffName(c.assignee) : ''));
      return h('li', { class: c.unread_count ? 'is-unread' : '' }, b);
    }
    [status, assignee, unreadOnly].forEach(function (c) { c.addEventListener('change', loadList); });
    await loadList();
    let thread = null;
    if (openId) thread = await openChat(chat, openId, loadList);
    every(5000, function () {
      loadList().catch(function () { /* next round */ });
      if (thread) thread().catch(function () { /* next round */ });
    });
  }

  async function openChat(chat, convId, refreshList) {
    let conv = await api('GET', '/v1/conversations/' + encodeURIComponent(convId));
    if (conv.unread_count > 0) {
      conv = await api('PATCH', '/v1/conversations/' + encodeURIComponent(convId), { read: true });
      refreshList().catch(function () { /* shown next round */ });
    }
    const thread = h('ol', { class: 'thread', 'aria-label': 'Messages', 'aria-live': 'polite' });
    const header = h('header');
    const reply = h('form', { class: 'reply', novalidate: true });
    fill(chat, header, thread, reply);

    function patientFor() { return conv.patients.length === 1 ? conv.patients[0] : null; }
    async function change(body, done) {
      try {
        const wasOptedOut = conv.sms_opted_out;
        conv = await api('PATCH', '/v1/conversations/' + encodeURIComponent(convId), body);
        drawHeader();
        if (conv.sms_opted_out !== wasOptedOut) drawReply();
        if (done) toast(done);
        refreshList().catch(function () { /* next round */ });
      } catch (e) { toast(e.message); }
    }
    function drawHeader() {
      const who = conv.patients.length ? conv.patients.map(fullName).join(', ') : 'Unknown number';
      const assign = h('select', {}, h('option', { value: '' }, 'Unassigned'));
      state.staff.forEach(function (s) { assign.append(h('option', { value: s.id, selected: s.id === conv.assignee }, s.name)); });
      if (conv.assignee && !state.staff.some(function (s) { return s.id === conv.assignee; })) assign.append(h('option', { value: conv.assignee, selected: true }, conv.assignee));
      assign.addEventListener('change', function () { change({ assignee: assign.value || null }, assign.value ? 'Assigned to ' + staffName(assign.value) + '.' : 'Unassigned.'); });
      fill(header,
        h('h2', {}, who, ' ', h('span', { class: 'tz' }, phone(conv.phone))),
        h('div', { class: 'tools' },
          conv.sms_opted_out ? badge('opted-out', 'Opted out of texts') : null,
          conv.status === 'closed' ? badge('closed', 'Closed') : null,
          h('label', { class: 'inline', for: assign.id || (assign.id = id('assign')) }, 'Assigned to'), assign,
          h('button', { type: 'button', onclick: function () { change({ read: conv.unread_count > 0 }, conv.unread_count > 0 ? 'Marked read.' : 'Marked unread.'); } }, conv.unread_count > 0 ? 'Mark read' : 'Mark unread'),
          h('button', { type: 'button', onclick: function () { change({ status: conv.status === 'open' ? 'closed' : 'open' }, conv.status === 'open' ? 'Conversation closed.' : 'Conversation reopened.'); } }, conv.status === 'open' ? 'Close' : 'Reopen'),
          conv.sms_opted_out ? null : h('button', { type: 'button', class: 'danger', onclick: function () {
            if (window.confirm('Opt ' + phone(conv.phone) + ' out of texts from the practice? Only the patient can opt back in, by texting START.')) change({ sms_opted_out: true }, 'The number is opted out.');
          } }, 'Opt out of texts'),
          dotsMenu('Actions for ' + who, [
            { text: 'Send a direct message', action: function () { openCompose({ patient: patientFor(), phone: conv.phone, patients: conv.patients }); } },
          ])));
    }
    function entry(e) {
      const out = e.direction === 'outbound';
      const meta = h('div', { class: 'meta' }, h('time', { datetime: e.at }, fmtTime(e.at)));
      if (out && e.status) meta.append(badge(e.status));
      if (e.auto_reply) meta.append(badge('sent', 'After-hours reply'));
      if (e.keyword) meta.append(badge(e.keyword === 'opt_out' ? 'opted-out' : 'sent', { opt_out: 'STOP: opted out', opt_in: 'START: opted in', help: 'HELP' }[e.keyword]));
      const media = (e.media || []).map(function (m) {
        if (m.status === 'ready' && m.url) {
          return h('img', {
            src: m.url, alt: 'Picture sent by the patient (' + m.content_type + ')',
            // A picture arriving after the thread was drawn keeps the newest text in view.
            onload: function () { if (thread.scrollHeight - thread.scrollTop - thread.clientHeight < 300) thread.scrollTop = thread.scrollHeight; },
          });
        }
        return h('p', { class: 'hint' }, m.status === 'copying' ? 'A picture is arriving…' : 'A picture could not be copied from the carrier.');
      });
      return h('li', { class: 'bubble ' + (out ? 'outbound' : 'inbound') },
        h('span', { class: 'sr' }, out ? 'Sent by the practice: ' : 'From the patient: '),
        h('div', {}, e.text), media,
        e.opt_out_intent ? h('p', { class: 'explain' }, h('strong', {}, 'This text may ask to stop texts.'), 'If so, opt the number out.') : null,
        out && e.error ? explain(e.error) : null,
        meta);
    }
    let drawn = '';
    async function loadThread() {
      const page = await api('GET', '/v1/conversations/' + encodeURIComponent(convId) + '/messages?limit=50');
      // Picture links are fresh on every read: compare what is shown instead.
      const now = JSON.stringify(page.items.map(function (e) {
        return [e.id, e.status, e.error && e.error.code, (e.media || []).map(function (m) { return m.status; })];
      }));
      if (now === drawn) return;
      drawn = now;
      const atBottom = thread.scrollTop + thread.clientHeight >= thread.scrollHeight - 30;
      fill(thread, page.items.slice().reverse().map(entry));
      if (atBottom) thread.scrollTop = thread.scrollHeight;
    }
    function drawReply() {
      const editor = messageEditor({ label: 'Reply', compact: true, patients: function () { return patientFor() ? [patientFor()] : []; } });
      const channel = channelSelect();
      const err = formError();
      const send = h('button', { type: 'submit', class: 'primary', disabled: conv.sms_opted_out }, 'Send reply');
      fill(reply, err, h('div', { class: 'row fields' }, editor.picked, channel.node), editor.nodes,
        conv.sms_opted_out ? h('p', { class: 'hint' }, 'This number opted out; it gets no texts until the patient texts START.') : null,
        h('div', { class: 'actions' }, send));
      reply.onsubmit = async function (ev) {
        ev.preventDefault();
        send.disabled = true;
        const fields = { text: editor.textarea, template_id: editor.picker, channel: channel.control, first_name: editor.textarea, last_name: editor.textarea };
        try {
          await api('POST', '/v1/conversations/' + encodeURIComponent(convId) + '/messages', Object.assign(editor.body(), { channel: channel.value() }));
          clearErrors(fields, err);
          editor.textarea.value = '';
          editor.picker.value = '';
          editor.update();
          toast('Reply sent.');
          await loadThread();
          thread.scrollTop = thread.scrollHeight;
        } catch (x) { showError(x, fields, err); }
        finally { send.disabled = conv.sms_opted_out; }
      };
    }
    drawHeader();
    await loadThread();
    drawReply();
    thread.scrollTop = thread.scrollHeight;
    return loadThread;
  }

  function explain(error) {
    return h('div', { class: 'explain' },
      h('strong', {}, error.title + (error.code ? ' (' + error.code + ')' : '')),
      error.resolution ? h('span', {}, 'What to do: ' + error.resolution) : null);
  }

  // ------------------------------------------------------------------ compose a direct message
  function openCompose(opts) {
    openDialog('Send a direct message', function (close) {
      const err = formError();
      const fields = {};
      const nodes = [err];
      let to = null;
      let first = null;
      let last = null;
      if (opts.patient) {
        nodes.push(h('p', {}, h('strong', {}, 'To: '), fullName(opts.patient), ' · ', phone(opts.patient.phone || opts.phone)));
      } else if (opts.phone) {
        nodes.push(h('p', {}, h('strong', {}, 'To: '), phone(opts.phone)));
      } else {
        to = h('input', { type: 'tel', autocomplete: 'off', placeholder: '(415) 555-0142' });
        first = h('input', { type: 'text' });
        last = h('input', { type: 'text' });
        nodes.push(field('Mobile number', to), h('div', { class: 'row' }, field('First name (optional)', first), field('Last name (optional)', last)));
        fields.to = to;
      }
      const editor = messageEditor({
        patients: function () {
          if (opts.patient) return [opts.patient];
          if (first && first.value) return [{ first_name: first.value, last_name: last.value }];
          return [];
        },
      });
      if (first) { first.addEventListener('input', editor.update); last.addEventListener('input', editor.update); }
      const channel = channelPicker();
      const schedule = schedulePicker();
      Object.assign(fields, { text: editor.textarea, template_id: editor.picker, channel: channel.control, send_at: schedule.control, patient_id: editor.textarea });
      fields.first_name = first || editor.textarea;
      fields.last_name = last || editor.textarea;
      const send = h('button', { type: 'submit', class: 'primary' }, 'Send');
      const form = h('form', { novalidate: true }, nodes, editor.nodes, channel.node, schedule.node,
        h('div', { class: 'actions' }, send, h('button', { type: 'button', onclick: close }, 'Cancel')));
      form.addEventListener('submit', async function (e) {
        e.preventDefault();
        const body = editor.body();
        if (opts.patient && opts.patient.patient_id) body.patient_id = opts.patient.patient_id;
        else if (opts.phone) body.to = opts.phone;
        else {
          body.to = to.value;
          if (first.value) body.first_name = first.value;
          if (last.value) body.last_name = last.value;
        }
        body.channel = channel.value();
        const at = schedule.value();
        if (at) body.send_at = at;
        send.disabled = true;
        try {
          const m = await api('POST', '/v1/messages', body);
          close();
          toast(m.status === 'scheduled' ? 'Scheduled for ' + fmtTime(m.recipients[0].not_before || m.send_at) + '.' : 'Message queued; follow it in Communication.');
        } catch (x) { showError(x, fields, err); }
        finally { send.disabled = false; }
      });
      setTimeout(function () { (to || editor.textarea).focus(); }, 0);
      return form;
    });
  }

  // ------------------------------------------------------------------ Patients and Bulk Action
  async function patientsScreen(root) {
    const selected = {};
    const loaded = {};
    const min = h('input', { type: 'number', min: 0, max: 150, inputmode: 'numeric' });
    const max = h('input', { type: 'number', min: 0, max: 150, inputmode: 'numeric' });
    const err = formError();
    const body = h('tbody');
    const more = h('button', { type: 'button', hidden: true }, 'Load more');
    const all = h('input', { type: 'checkbox', 'aria-label': 'Select every patient shown' });
    const count = h('span', { 'aria-live': 'polite' });
    const bulk = h('button', { type: 'button', class: 'primary' }, 'Bulk Action');
    let cursor = null;
    let filter = {};
    fill(root,
      h('h1', {}, 'Patients'),
      h('form', { class: 'card row', novalidate: true, onsubmit: function (e) { e.preventDefault(); load(true); } },
        field('Minimum age', min), field('Maximum age', max),
        h('div', {}, h('button', { type: 'submit' }, 'Apply age filter'))),
      err,
      h('div', { class: 'actions' }, bulk, count,
        h('button', { type: 'button', onclick: function () { openCompose({}); } }, 'Text a number')),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, all), h('th', {}, 'Name'), h('th', {}, 'Mobile'), h('th', {}, 'Birth date'), h('th', {}, 'Texting'), h('th', {}, h('span', { class: 'sr' }, 'Actions')))), body),
      h('div', { class: 'more' }, more));

    function refreshCount() {
      const n = Object.keys(selected).length;
      count.textContent = n ? n + ' selected' : 'Select patients for a Bulk Action, or use the age filter.';
    }
    function row(p) {
      loaded[p.patient_id] = p;
      const box = h('input', { type: 'checkbox', checked: !!selected[p.patient_id], 'aria-label': 'Select ' + fullName(p) });
      box.addEventListener('change', function () {
        if (box.checked) selected[p.patient_id] = p; else delete selected[p.patient_id];
        refreshCount();
      });
      return h('tr', {}, h('td', {}, box), h('td', {}, fullName(p), h('div', { class: 'hint' }, p.patient_id)), h('td', { class: 'phone' }, phone(p.phone)),
        h('td', {}, p.birth_date || '—'),
        h('td', {}, p.sms_opted_out ? badge('opted-out', 'Opted out') : null, p.sms_undeliverable ? badge('undeliverable', 'Cannot receive texts') : null, !p.sms_opted_out && !p.sms_undeliverable ? badge('delivered', 'OK') : null),
        h('td', {}, dotsMenu('Actions for ' + fullName(p), [
          { text: 'Send a direct message', action: function () { openCompose({ patient: p }); } },
          { text: 'Open Patient Chat', action: function () { location.hash = '#/inbox/c' + p.phone.replace('+', ''); } },
        ])));
    }
    async function load(reset) {
      if (reset) {
        filter = { min_age: min.value, max_age: max.value };
        cursor = null;
        fill(body);
      }
      try {
        const page = await api('GET', '/v1/patients' + query(Object.assign({ limit: 50, cursor: cursor }, filter)));
        clearErrors({ min_age: min, max_age: max }, err);
        page.items.forEach(function (p) { body.append(row(p)); });
        if (!body.children.length) body.append(h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'No patients match.')));
        cursor = page.next_cursor;
        more.hidden = !cursor;
      } catch (x) { showError(x, { min_age: min, max_age: max }, err); }
    }
    all.addEventListener('change', function () {
      body.querySelectorAll('input[type=checkbox]').forEach(function (b) { if (b.checked !== all.checked) b.click(); });
    });
    more.addEventListener('click', function () { load(false); });
    bulk.addEventListener('click', function () {
      openBulk({ selected: Object.keys(selected).map(function (k) { return selected[k]; }), filter: filter, sample: Object.keys(loaded).map(function (k) { return loaded[k]; }) });
    });
    refreshCount();
    await load(true);
  }

  function openBulk(opts) {
    openDialog('Bulk Action: send a direct message', function (close) {
      const err = formError();
      const name = id('aud');
      const hasFilter = opts.filter.min_age !== '' && opts.filter.min_age != null || opts.filter.max_age !== '' && opts.filter.max_age != null;
      const pickSelected = h('input', { type: 'radio', name: name, id: name + '-sel', checked: opts.selected.length > 0, disabled: !opts.selected.length });
      const pickFilter = h('input', { type: 'radio', name: name, id: name + '-age', checked: !opts.selected.length && hasFilter, disabled: !hasFilter });
      const ageText = hasFilter ? 'Everyone matching the age filter (' + [opts.filter.min_age ? 'from ' + opts.filter.min_age : '', opts.filter.max_age ? 'up to ' + opts.filter.max_age : ''].filter(Boolean).join(' ') + ' years)' : 'Everyone matching an age filter (set one on the Patients tab)';
      const audience = h('fieldset', {}, h('legend', {}, 'Recipients'),
        h('div', { class: 'check' }, pickSelected, h('label', { for: pickSelected.id }, 'The ' + opts.selected.length + ' selected patient' + (opts.selected.length === 1 ? '' : 's'))),
        h('div', { class: 'check' }, pickFilter, h('label', { for: pickFilter.id }, ageText)),
        h('div', { class: 'field-error', id: pickSelected.id + '-error' }));
      const editor = messageEditor({
        previewLabel: 'Longest text, as the patients get it:',
        patients: function () { return pickSelected.checked ? opts.selected : opts.sample; },
      });
      pickSelected.addEventListener('change', editor.update);
      pickFilter.addEventListener('change', editor.update);
      const channel = channelPicker();
      const schedule = schedulePicker();
      const cap = state.settings.hourly_cap;
      const ack = h('input', { type: 'checkbox', id: id('ack') });
      const ackBox = h('div', { class: 'ack' },
        h('div', { class: 'check' }, ack, h('label', { for: ack.id }, 'I acknowledge that the Bulk Direct Message feature is limited to ' + cap + ' messages per hour and is intended to contact patients who are expecting communication in relation to their treatment.')),
        h('div', { class: 'field-error', id: ack.id + '-error' }),
        h('p', { class: 'hint' }, 'Why ' + cap + ' per hour? Texts should only carry important office updates to the patients they concern. Mass texting risks the number being flagged as marketing or spam by carriers, and then no patient can be texted from it. A larger list goes out in waves of ' + cap + ' every hour until done, and never in quiet hours. If your list is too long, use the age filter to narrow it.'));
      const fields = { text: editor.textarea, template_id: editor.picker, channel: channel.control, send_at: schedule.control, acknowledge_bulk_limit: ack, patient_ids: pickSelected, audience: pickFilter, 'audience.min_age': pickFilter, 'audience.max_age': pickFilter };
      const result = h('div', { 'aria-live': 'polite' });
      const send = h('button', { type: 'submit', class: 'primary' }, 'Send');
      const form = h('form', { novalidate: true }, err, audience, editor.nodes, channel.node, schedule.node, ackBox, result,
        h('div', { class: 'actions' }, send, h('button', { type: 'button', onclick: close }, 'Close')));
      form.addEventListener('submit', async function (e) {
        e.preventDefault();
        const body = Object.assign(editor.body(), { channel: channel.value(), acknowledge_bulk_limit: ack.checked });
        if (pickSelected.checked) body.patient_ids = opts.selected.map(function (p) { return p.patient_id; });
        else {
          body.audience = {};
          if (opts.filter.min_age) body.audience.min_age = Number(opts.filter.min_age);
          if (opts.filter.max_age) body.audience.max_age = Number(opts.filter.max_age);
        }
        const at = schedule.value();
        if (at) body.send_at = at;
        send.disabled = true;
        try {
          const b = await api('POST', '/v1/bulk-messages', body);
          clearErrors(fields, err);
          const skipped = b.counts.skipped;
          fill(result, h('div', { class: 'card', role: 'status' },
            h('strong', {}, 'Bulk message accepted for ' + b.target_count + ' patient' + (b.target_count === 1 ? '' : 's') + (skipped ? ' (' + skipped + ' skipped)' : '') + '.'),
            h('p', {}, 'It goes out at most ' + b.hourly_cap + ' per hour. Estimated completion: ' + (b.estimated_completion_at ? fmtTime(b.estimated_completion_at) : 'nothing left to send') + '.'),
            h('a', { href: '#/communication/' + b.id, onclick: close }, 'Follow its progress in Communication')));
          send.hidden = true;
        } catch (x) { showError(x, fields, err); }
        finally { send.disabled = false; }
      });
      return form;
    });
  }

  // ------------------------------------------------------------------ Communication dashboard (Manual tab)
  async function communicationScreen(root, rest) {
    const from = h('input', { type: 'date', value: practiceDate(-30) });
    const to = h('input', { type: 'date' });
    const type = h('select', {}, h('option', { value: '' }, 'All'), h('option', { value: 'direct_message' }, 'Direct Message'), h('option', { value: 'bulk_message' }, 'Bulk Message'));
    const status = h('select', {}, h('option', { value: '' }, 'Any'));
    ['scheduled', 'queued', 'sending', 'sent', 'delivered', 'failed', 'canceled', 'skipped', 'completed'].forEach(function (s) { status.append(h('option', { value: s }, s)); });
    const err = formError();
    const body = h('tbody');
    const more = h('button', { type: 'button', hidden: true }, 'Load more');
    const open = {};
    if (rest[0]) open[decodeURIComponent(rest[0])] = true;
    let cursor = null;
    fill(root,
      h('h1', {}, 'Communication'),
      h('p', { class: 'hint' }, 'Manual tab: every direct and bulk message sent from the office, newest first. Times in ' + tz() + '.'),
      h('form', { class: 'card row', novalidate: true, onsubmit: function (e) { e.preventDefault(); load(true); } },
        field('Sent from', from), field('Sent to', to), field('Type', type), field('Status', status),
        h('div', {}, h('button', { type: 'submit' }, 'Show'))),
      err,
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Sent'), h('th', {}, 'Type'), h('th', {}, 'Content'), h('th', {}, 'Target'), h('th', {}, 'Status'), h('th', {}, h('span', { class: 'sr' }, 'Actions')))), body),
      h('div', { class: 'more' }, more));

    function params() {
      const q = { type: type.value, status: status.value, limit: 50 };
      if (from.value) q.sent_from = zonedInstant(from.value, '00:00').toISOString();
      if (to.value) q.sent_to = new Date(zonedInstant(to.value, '23:59').getTime() + 59999).toISOString();
      return q;
    }
    let pages = 0;
    let lastDrawn = '';
    // `quiet`: an automatic refresh, drawn only when something changed (so
    // focus and scrolling stay), and not once more pages were loaded.
    async function load(reset, quiet) {
      if (quiet && pages > 1) return;
      try {
        const page = await api('GET', '/v1/communications' + query(Object.assign(params(), { cursor: reset ? null : cursor })));
        clearErrors({ sent_from: from, sent_to: to, type: type, status: status }, err);
        const key = JSON.stringify(page.items) + JSON.stringify(open);
        if (quiet && key === lastDrawn) return;
        if (reset) { lastDrawn = key; pages = 0; }
        const rows = [];
        for (const m of page.items) {
          rows.push(row(m));
          const details = h('tr', { hidden: !open[m.id], 'data-details': m.id }, h('td', { colspan: 6 }));
          rows.push(details);
          if (open[m.id]) await showDetails(m, details);
        }
        if (reset) fill(body, rows.length ? rows : h('tr', {}, h('td', { colspan: 6, class: 'empty' }, 'Nothing was sent in these dates.')));
        else rows.forEach(function (r) { body.append(r); });
        pages += 1;
        cursor = page.next_cursor;
        more.hidden = !cursor;
      } catch (x) { if (!quiet) showError(x, { sent_from: from, sent_to: to, type: type, status: status }, err); }
    }
    function progress(m) {
      const c = m.counts;
      const done = c.delivered + c.failed + c.skipped + c.canceled;
      return h('div', {}, h('progress', { max: m.target_count, value: done, 'aria-label': done + ' of ' + m.target_count + ' done' }),
        h('div', { class: 'hint' }, c.delivered + ' delivered · ' + c.failed + ' failed · ' + c.skipped + ' skipped' + (c.canceled ? ' · ' + c.canceled + ' canceled' : '') + ' · ' + (c.scheduled + c.queued + c.sending + c.sent) + ' to go'));
    }
    function row(m) {
      const when = m.sent_at || m.send_at || m.created_at;
      const target = h('button', { type: 'button', class: 'link', 'aria-expanded': open[m.id] ? 'true' : 'false', 'aria-label': 'Show the ' + m.target_count + ' recipient' + (m.target_count === 1 ? '' : 's') }, String(m.target_count));
      target.addEventListener('click', async function () {
        const details = body.querySelector('[data-details="' + m.id + '"]');
        open[m.id] = !open[m.id];
        target.setAttribute('aria-expanded', open[m.id] ? 'true' : 'false');
        details.hidden = !open[m.id];
        if (open[m.id]) await showDetails(m, details);
      });
      const actions = [];
      const isBulk = m.type === 'bulk_message';
      if (!isBulk && m.status === 'scheduled') actions.push(h('button', { type: 'button', onclick: function () { reschedule(m); } }, 'Reschedule'));
      if ((!isBulk && (m.status === 'scheduled' || m.status === 'queued')) || (isBulk && (m.status === 'scheduled' || m.status === 'sending'))) {
        actions.push(h('button', { type: 'button', class: 'danger', onclick: function () { cancel(m); } }, 'Cancel'));
      }
      return h('tr', { 'data-id': m.id },
        h('td', {}, fmtTime(when), m.sent_at ? null : h('div', { class: 'hint' }, m.send_at ? 'scheduled' : 'not sent yet')),
        h('td', {}, isBulk ? 'Bulk Message' : 'Direct Message'),
        h('td', { class: 'content' }, m.content),
        h('td', {}, target),
        h('td', {}, badge(m.status), isBulk ? progress(m) : null),
        h('td', {}, actions));
    }
    async function showDetails(m, details) {
      const cell = details.firstChild;
      fill(cell, h('p', { class: 'loading' }, 'Loading recipients…'));
      try {
        if (m.type === 'bulk_message') {
          const b = await api('GET', '/v1/bulk-messages/' + m.id);
          const filter = h('select', {}, h('option', { value: '' }, 'Every status'));
          ['scheduled', 'queued', 'sending', 'sent', 'delivered', 'failed', 'canceled', 'skipped'].forEach(function (s) { filter.append(h('option', { value: s }, s)); });
          const list = h('tbody');
          const recipients = async function () {
            const page = await api('GET', '/v1/bulk-messages/' + m.id + '/recipients' + query({ status: filter.value, limit: 200 }));
            fill(list, page.items.map(recipientRow));
          };
          filter.addEventListener('change', recipients);
          fill(cell,
            h('p', {}, progress(b), 'At most ' + b.hourly_cap + ' per hour. Estimated completion: ' + (b.estimated_completion_at ? fmtTime(b.estimated_completion_at) : '—')),
            field('Recipients by status', filter), recipientTable(list));
          await recipients();
        } else {
          const d = await api('GET', '/v1/messages/' + m.id);
          fill(cell, recipientTable(h('tbody', {}, d.recipients.map(recipientRow))));
        }
      } catch (x) { fill(cell, h('p', { class: 'form-error' }, x.message)); }
    }
    function recipientTable(tbody) {
      return h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'To'), h('th', {}, 'Patient'), h('th', {}, 'Status'), h('th', {}, 'When'), h('th', {}, 'Explanation'))), tbody);
    }
    function recipientRow(r) {
      return h('tr', {}, h('td', { class: 'phone' }, phone(r.to)), h('td', {}, r.patient_id || '—'), h('td', {}, badge(r.status)),
        h('td', {}, fmtTime(r.delivered_at || r.sent_at || r.not_before)),
        h('td', {}, r.error ? explain(r.error) : r.skip_reason ? r.skip_reason : ''));
    }
    async function cancel(m) {
      if (!window.confirm('Cancel this ' + (m.type === 'bulk_message' ? 'bulk message (everything not yet sending)' : 'message') + '?')) return;
      try {
        await api('DELETE', (m.type === 'bulk_message' ? '/v1/bulk-messages/' : '/v1/messages/') + m.id);
        toast('Canceled.');
        await load(true);
      } catch (x) { toast(x.message); }
    }
    function reschedule(m) {
      openDialog('Reschedule the message', function (close) {
        const when = new Date(m.send_at);
        const p = zoneParts(when);
        const date = h('input', { type: 'date', value: p.y + '-' + pad(p.m) + '-' + pad(p.d) });
        const time = h('input', { type: 'time', value: pad(p.H) + ':' + pad(p.M) });
        const e = formError();
        const form = h('form', { novalidate: true }, e, h('p', { class: 'content' }, m.content), h('div', { class: 'row' }, field('Date', date), field('Time', time, zoneLabel())),
          h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save'), h('button', { type: 'button', onclick: close }, 'Cancel')));
        form.addEventListener('submit', async function (ev) {
          ev.preventDefault();
          try {
            await api('PATCH', '/v1/messages/' + m.id, { send_at: zonedInstant(date.value, time.value).toISOString() });
            close();
            toast('Rescheduled.');
            await load(true);
          } catch (x) { showError(x, { send_at: date }, e); }
        });
        return form;
      });
    }
    more.addEventListener('click', function () { load(false); });
    await load(true);
    every(4000, function () { if (!document.querySelector('dialog')) load(true, true); });
  }

  // ------------------------------------------------------------------ Quick Messages
  async function templatesScreen(root) {
    const name = h('input', { type: 'text', maxlength: 100 });
    const text = h('textarea', { rows: 4 });
    const counter = h('p', { class: 'counter', 'aria-live': 'polite' });
    const err = formError();
    const title = h('h2', {}, 'New Quick Message');
    const save = h('button', { type: 'submit', class: 'primary' }, 'Save');
    const cancelEdit = h('button', { type: 'button', hidden: true }, 'Stop editing');
    const list = h('tbody');
    let editing = null;
    const fields = { name: name, body: text };
    text.addEventListener('input', function () { counter.textContent = counterText(render(text.value, { first_name: 'Christopher', last_name: 'Montgomery' })); });
    fill(root,
      h('h1', {}, 'Quick Messages'),
      h('form', { class: 'card', novalidate: true, onsubmit: submit }, title, err, field('Name', name), field('Message', text, 'Merge fields: {first_name} {last_name} {practice_name} {practice_phone}. The count assumes a long name.'), counter,
        h('div', { class: 'actions' }, save, cancelEdit)),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'Message'), h('th', {}, h('span', { class: 'sr' }, 'Actions')))), list));
    function edit(t) {
      editing = t;
      title.textContent = 'Edit “' + t.name + '”';
      name.value = t.name;
      text.value = t.body;
      cancelEdit.hidden = false;
      text.dispatchEvent(new Event('input'));
      name.focus();
    }
    function reset() {
      editing = null;
      title.textContent = 'New Quick Message';
      name.value = '';
      text.value = '';
      cancelEdit.hidden = true;
      text.dispatchEvent(new Event('input'));
    }
    cancelEdit.addEventListener('click', reset);
    async function submit(e) {
      e.preventDefault();
      try {
        if (editing) await api('PUT', '/v1/templates/' + editing.id, { name: name.value, body: text.value });
        else await api('POST', '/v1/templates', { name: name.value, body: text.value });
        clearErrors(fields, err);
        toast(editing ? 'Quick Message saved.' : 'Quick Message added.');
        reset();
        await draw();
      } catch (x) { showError(x, fields, err); }
    }
    async function draw() {
      const items = await templates(true);
      fill(list, items.length ? items.map(function (t) {
        return h('tr', {}, h('td', {}, t.name), h('td', { class: 'content' }, t.body),
          h('td', {}, h('div', { class: 'actions' },
            h('button', { type: 'button', onclick: function () { edit(t); } }, 'Edit'),
            h('button', { type: 'button', class: 'danger', onclick: async function () {
              if (!window.confirm('Delete the Quick Message “' + t.name + '”?')) return;
              try { await api('DELETE', '/v1/templates/' + t.id); toast('Deleted.'); await draw(); } catch (x) { toast(x.message); }
            } }, 'Delete'))));
      }) : [h('tr', {}, h('td', { colspan: 3, class: 'empty' }, 'No Quick Messages yet.'))]);
    }
    reset();
    await draw();
  }

  // ------------------------------------------------------------------ Settings (and staff, for admins)
  async function settingsScreen(root) {
    const s = state.settings = await api('GET', '/v1/settings');
    const isAdmin = state.session.staff.role === 'admin';
    const help = h('textarea', { rows: 3 }, '');
    help.value = s.help_text || '';
    const enabled = h('input', { type: 'checkbox', id: 'f-auto_reply-enabled', checked: s.auto_reply.enabled });
    const replyText = h('textarea', { rows: 3, id: 'f-auto_reply-text' });
    replyText.value = s.auto_reply.text || '';
    const fields = { help_text: help, auto_reply: enabled, 'auto_reply.enabled': enabled, 'auto_reply.text': replyText, 'auto_reply.office_hours': enabled };
    const grid = h('div', { class: 'days' }, h('strong', {}, 'Day'), h('strong', {}, 'Open'), h('strong', {}, 'Opens'), h('strong', {}, 'Closes'));
    const days = {};
    DAYS.forEach(function (d) {
      const hours = s.auto_reply.office_hours[d[0]];
      const isOpen = h('input', { type: 'checkbox', checked: !!hours, 'aria-label': d[1] + ' open' });
      const opens = h('input', { type: 'time', value: hours ? hours.open : '08:00', 'aria-label': d[1] + ' opens', id: 'f-auto_reply-office_hours-' + d[0] + '-open', disabled: !hours });
      const closes = h('input', { type: 'time', value: hours ? hours.close : '17:00', 'aria-label': d[1] + ' closes', id: 'f-auto_reply-office_hours-' + d[0] + '-close', disabled: !hours });
      isOpen.addEventListener('change', function () { opens.disabled = closes.disabled = !isOpen.checked; });
      days[d[0]] = { isOpen: isOpen, opens: opens, closes: closes };
      fields['auto_reply.office_hours.' + d[0]] = opens;
      fields['auto_reply.office_hours.' + d[0] + '.open'] = opens;
      fields['auto_reply.office_hours.' + d[0] + '.close'] = closes;
      grid.append(h('span', {}, d[1]), isOpen, h('div', {}, opens, h('div', { class: 'field-error', id: opens.id + '-error' })), h('div', {}, closes, h('div', { class: 'field-error', id: closes.id + '-error' })));
    });
    const err = formError();
    const form = h('form', { class: 'card', novalidate: true },
      h('h2', {}, 'Replies the practice sends by itself'), err,
      field('HELP reply', help, 'Sent when a patient texts HELP. {practice_name} and {practice_phone} are filled in.'),
      h('fieldset', {}, h('legend', {}, 'After-hours reply'),
        h('div', { class: 'check' }, enabled, h('label', { for: enabled.id }, 'Answer texts that arrive outside office hours')),
        h('div', { class: 'field-error', id: enabled.id + '-error' }),
        field('Reply text', replyText),
        h('h3', {}, 'Office hours (' + tz() + ')'), grid),
      h('div', { class: 'actions' }, isAdmin
        ? h('button', { type: 'submit', class: 'primary' }, 'Save settings')
        : h('p', { class: 'hint' }, 'Only an admin of the practice can change these settings.')));
    if (!isAdmin) form.querySelectorAll('input, textarea').forEach(function (el) { el.disabled = true; });
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      const office = {};
      DAYS.forEach(function (d) {
        const x = days[d[0]];
        office[d[0]] = x.isOpen.checked ? { open: x.opens.value, close: x.closes.value } : null;
      });
      const body = { auto_reply: { enabled: enabled.checked, text: replyText.value, office_hours: office } };
      body.help_text = help.value.trim() ? help.value : null;
      try {
        state.settings = await api('PATCH', '/v1/settings', body);
        clearErrors(fields, err);
        toast('Settings saved.');
      } catch (x) { showError(x, fields, err); }
    });
    const quiet = s.quiet_hours ? s.quiet_hours.start + '–' + s.quiet_hours.end : 'none';
    fill(root,
      h('h1', {}, 'Settings'),
      h('div', { class: 'card' }, h('h2', {}, s.name),
        h('p', {}, 'Main SMS number ' + phone(s.channels.sms_main) + (s.channels.sms_alt ? ' · Alternate ' + phone(s.channels.sms_alt) : '')),
        h('p', {}, 'Time zone ' + s.timezone + ' · Bulk messages at most ' + s.hourly_cap + ' per hour · Scheduled and bulk texts go out ' + quiet),
        h('p', { class: 'hint' }, 'Numbers, the hourly cap and quiet hours are set by the administrator.')),
      form);
    if (isAdmin) root.append(await staffCard());
  }

  async function staffCard() {
    const list = h('tbody');
    const user = h('input', { type: 'text', autocomplete: 'off', autocapitalize: 'none' });
    const name = h('input', { type: 'text' });
    const role = h('select', {}, h('option', { value: 'staff' }, 'Staff'), h('option', { value: 'admin' }, 'Admin'));
    const password = h('input', { type: 'password', autocomplete: 'new-password' });
    const err = formError();
    const fields = { user: user, name: name, role: role, password: password };
    async function draw() {
      state.staff = (await api('GET', '/v1/staff')).items;
      fill(list, state.staff.map(function (m) {
        const me = m.id === state.session.staff.id;
        return h('tr', {}, h('td', {}, m.name), h('td', {}, m.user), h('td', {}, m.role),
          h('td', {}, me ? h('span', { class: 'hint' }, 'You') : h('button', { type: 'button', class: 'danger', onclick: async function () {
            if (!window.confirm('Remove ' + m.name + '? They are signed out at once.')) return;
            try { await api('DELETE', '/v1/staff/' + m.id); toast(m.name + ' removed.'); await draw(); } catch (x) { toast(x.message); }
          } }, 'Remove')));
      }));
    }
    const form = h('form', { novalidate: true }, h('h3', {}, 'Add a staff member'), err,
      h('div', { class: 'row fields' }, field('User name', user), field('Name', name), field('Role', role), field('Password', password, '12 characters or more')),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Add')));
    form.addEventListener('submit', async function (e) {
      e.preventDefault();
      try {
        await api('POST', '/v1/staff', { user: user.value, name: name.value, role: role.value, password: password.value });
        clearErrors(fields, err);
        toast(name.value + ' can now sign in as ' + user.value.toLowerCase() + '.');
        user.value = name.value = password.value = '';
        await draw();
      } catch (x) { showError(x, fields, err); }
    });
    await draw();
    return h('div', { class: 'card' }, h('h2', {}, 'Staff accounts'),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Name'), h('th', {}, 'User name'), h('th', {}, 'Role'), h('th', {}, h('span', { class: 'sr' }, 'Actions')))), list), form);
  }

  // ------------------------------------------------------------------ start
  (async function boot() {
    try {
      state.session = await api('GET', '/v1/sessions/current');
    } catch (e) {
      showSignIn(e.status === 401 ? null : e.message);
      return;
    }
    try { await enter(); } catch (e) { showSignIn(e.message); }
  })();
}());

// The Shoebox window: renders the state the shell sends and calls its
// commands. No sync logic here: every decision is the engine's.
'use strict';

const { invoke } = window.__TAURI__.core;
const { listen } = window.__TAURI__.event;
const $ = (sel) => document.querySelector(sel);

let state = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function bytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}

const STATE_TEXT = {
  new: 'scanning', up_to_date: 'up to date', pending: 'uploading',
  needs_attention: 'needs attention', folder_missing: 'folder missing', deletions_held: 'deletions held',
};

// Error codes (`{code, message}`) that mean the chosen folder cannot be watched.
const FOLDER_CODES = ['folder_missing', 'not_a_folder', 'folder_unreadable', 'folder_is_system_view'];

function toast(message) {
  const t = $('#toast');
  t.textContent = message;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 6000);
}

async function call(cmd, args) {
  try {
    return await invoke(cmd, args);
  } catch (e) {
    toast(e && e.message ? e.message : String(e));
    throw e;
  }
}

async function refresh() {
  state = await call('get_state');
  render();
}

// What the running engine says of a destination it cannot use now, by code.
const DEST_DOWN_TEXT = { dest_unreachable: 'destination unreachable', dest_full: 'destination full' };

function destDown(name) {
  return ((state && state.status.destinations_down) || []).find((d) => d.dest === name);
}

function watchState(w) {
  if (w.watcher_kind === 'degraded') return 'watcher degraded';
  if (state.status.paused && w.state !== 'folder_missing') return 'paused';
  const down = w.state !== 'folder_missing' && destDown(w.dest);
  if (down) return DEST_DOWN_TEXT[down.code] || 'destination unavailable';
  return STATE_TEXT[w.state] || w.state;
}

/** "45 s", "12 min", "2 h 5 min". */
function duration(s) {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.round(s / 60)} min`;
  const h = Math.floor(s / 3600), m = Math.round((s % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** A folder's backup while files wait: files and bytes done, and the time left at the recent rate. */
function folderProgress(w) {
  if (!w.pending) return null;
  const done = w.bytes - w.pending_bytes;
  const left = (state.time_left || []).find((t) => t.folder === w.folder);
  const text = `${w.uploaded} of ${w.files} files · ${bytes(done)} of ${bytes(w.bytes)}`
    + (left ? ` · about ${duration(left.secs)} left` : '');
  return el('div', { class: 'folder-progress' },
    el('progress', { max: String(Math.max(w.bytes, 1)), value: String(done), 'aria-label': `backup of ${w.folder}` }),
    el('span', { class: 'progress-text', text }));
}

function renderWatches() {
  const list = $('#watch-list');
  list.replaceChildren();
  $('#no-folders').hidden = state.status.watches.length > 0;
  for (const w of state.status.watches) {
    const albums = { 'per-folder': `${w.album} + one album per subfolder`, 'by-date': 'one album per date taken' }[w.mode] || w.album;
    const actions = el('div', { class: 'watch-actions' },
      el('button', { type: 'button', class: 'sync-btn', text: 'Sync now', onclick: () => call('sync_now').then(refresh) }),
      el('button', { type: 'button', class: 'remove-btn', text: 'Remove…', onclick: () => askRemove(w.folder) }));
    if (w.deletions_held > 0) {
      actions.append(
        el('button', { type: 'button', class: 'confirm-deletions-btn', text: `Delete ${w.deletions_held} from albums`,
          onclick: () => call('confirm_deletions', { folder: w.folder }).then(refresh) }),
        el('button', { type: 'button', class: 'keep-files-btn', text: 'Keep them',
          onclick: () => call('keep_files', { folder: w.folder }).then(refresh) }));
    }
    const li = el('li', { class: 'watch-row', 'data-folder': w.folder },
      el('div', { class: 'watch-head' },
        el('span', { class: 'folder', text: w.folder }),
        el('span', { class: 'arrow', text: '→' }),
        el('span', { class: 'albums', text: albums }),
        el('span', { class: `state ${w.state}`, text: watchState(w) })),
      el('div', { class: 'meta', text: `${w.dest} · ${w.mode === 'single' ? 'one album' : 'album per folder'} · deleted files: ${w.on_delete === 'keep' ? 'kept' : 'removed'} · last sync ${w.last_scan ? new Date(w.last_scan).toLocaleString() : 'not yet'}` }),
      el('div', { class: 'counts' },
        el('b', { class: 'uploaded', text: String(w.uploaded) }), ' uploaded · ',
        el('b', { class: 'pending', text: String(w.pending) }), ' pending · ',
        el('b', { class: 'failed', text: String(w.failed) }), ' failed · ',
        el('b', { class: 'ignored', text: String(w.ignored + w.skipped) }), ' ignored'),
      folderProgress(w),
      w.detail ? el('div', { class: 'detail', text: w.detail }) : null,
      w.watcher && w.watcher !== 'ok' ? el('div', { class: 'detail', text: w.watcher }) : null,
      destDown(w.dest) ? el('div', { class: 'detail dest-down', text: destDown(w.dest).message }) : null,
      actions);
    list.append(li);
  }
}

function renderActivity() {
  const up = $('#uploading');
  up.replaceChildren();
  for (const u of state.status.uploading) {
    up.append(el('li', {}, el('span', { class: 'path', text: `${u.path} → ${u.album}` }),
      el('progress', { max: String(Math.max(u.size, 1)), value: String(u.done), 'aria-label': `progress of ${u.path}` }),
      el('span', { class: 'muted', text: bytes(u.size) })));
  }
  if (!state.status.uploading.length) up.append(el('li', { class: 'muted', text: 'Nothing right now.' }));
  $('#settling').hidden = !state.status.settling;
  $('#settling').textContent = `${state.status.settling} files are still being written; they are uploaded once they stop changing.`;
  const f = $('#failures');
  f.replaceChildren();
  for (const p of state.failures) {
    f.append(el('li', { class: 'failure' }, el('span', { class: 'path', text: p.path }), el('span', { class: 'reason', text: p.reason })));
  }
  $('#no-failures').hidden = state.failures.length > 0;
  $('#retry-failed').hidden = state.failures.length === 0;
  const r = $('#recent');
  r.replaceChildren();
  for (const x of state.recent) {
    const how = { uploaded: `uploaded ${bytes(x.bytes)}`, linked: 'already in the album', moved: 'moved', unchanged: 'unchanged' }[x.outcome];
    const taken = x.taken ? ` · taken ${takenText(x.taken)}` : '';
    r.append(el('li', {}, thumbnail(x.id), el('span', { class: 'path', text: `${x.album}/${x.name}` }), el('span', { class: 'muted', text: how + taken })));
  }
  $('#no-recent').hidden = state.recent.length > 0;
  for (const id of thumbnails.keys()) if (!state.recent.some((x) => x.id === id)) thumbnails.delete(id);
}

// Thumbnails of recent uploads by upload id: asked for once each, one at a
// time, and shown wherever that upload is drawn. Until one comes (or when
// nothing can show the file) its kind's icon stands in.
const thumbnails = new Map();
let thumbnailQueue = Promise.resolve();
function thumbnail(id) {
  const node = el('span', { class: 'thumb', 'data-thumb': String(id), 'aria-hidden': 'true' });
  const known = thumbnails.get(id);
  if (known) showThumbnail(node, known);
  else if (!thumbnails.has(id)) {
    thumbnails.set(id, null);
    thumbnailQueue = thumbnailQueue
      .then(() => invoke('thumbnail', { id }))
      .catch(() => ({ kind: 'other', url: null }))
      .then((t) => {
        if (!thumbnails.has(id)) return;
        thumbnails.set(id, t);
        for (const n of document.querySelectorAll(`[data-thumb="${id}"]`)) showThumbnail(n, t);
      });
  }
  return node;
}
function showThumbnail(node, t) {
  node.className = `thumb ${t.kind}${t.url ? ' picture' : ''}`;
  node.replaceChildren(t.url ? el('img', { src: t.url, alt: '' }) : '');
}

// A capture date as the Activity view shows it: "15 Jun 2024, 12:00",
// marked when it is only the file's modification time.
function takenText(t) {
  const [date, time] = t.at.split('T');
  const [y, m, d] = date.split('-').map(Number);
  const month = new Date(Date.UTC(y, m - 1, 1)).toLocaleString('en-GB', { month: 'short', timeZone: 'UTC' });
  const guess = { 'file-name': ' (from its name)', modified: ' (file date)' }[t.from] || '';
  return `${d} ${month} ${y}, ${time.slice(0, 5)}${guess}`;
}

// What the scans left out, read again at most every few seconds while the
// Activity tab is open.
let ignoredAt = 0;
async function renderIgnored() {
  if (Date.now() - ignoredAt < 3000) return;
  ignoredAt = Date.now();
  const list = await call('list_ignored');
  $('#ignored').replaceChildren(...list.map((f) => el('li', { class: 'ignored' },
    el('span', { class: 'path', text: f.path }), el('span', { class: 'reason muted', text: f.reason }))));
  $('#no-ignored').hidden = list.length > 0;
}

function renderSettings() {
  $('#autostart').checked = state.autostart;
  $('#paused-setting').checked = state.status.paused;
  if (document.activeElement !== $('#workers')) $('#workers').value = state.workers;
  if (document.activeElement !== $('#bandwidth')) $('#bandwidth').value = state.bandwidth;
  if (document.activeElement !== $('#schedule')) $('#schedule').value = state.schedule;
  if (document.activeElement !== $('#schedule-bandwidth')) $('#schedule-bandwidth').value = state.schedule_bandwidth;
  $('#on-battery').value = state.on_battery;
  $('#on-metered').value = state.on_metered;
  $('#library-path').textContent = state.library;
  $('#logs-path').textContent = state.logs;
}

function render() {
  if (!state) return;
  $('#status-line').textContent = state.summary.line;
  const w = state.status.waiting;
  $('#anyway-btn').hidden = !w || (w.holds !== 'all' && !w.held);
  const paused = state.status.paused;
  $('#pause-btn').textContent = paused ? 'Resume syncing' : 'Pause syncing';
  $('#pause-btn').setAttribute('aria-pressed', String(paused));
  const elsewhere = $('#engine-elsewhere');
  elsewhere.hidden = !state.engine_elsewhere;
  elsewhere.textContent = state.engine_elsewhere ? `Backups run in ${state.engine_elsewhere}; this window controls it.` : '';
  renderWatches();
  renderActivity();
  renderSettings();
  if (!$('#destinations').hidden && downKey() !== shownDown) renderDestinations();
  if (!$('#activity').hidden) renderIgnored();
}

// The destinations' health the Destinations tab shows, to redraw it when
// a destination goes down or comes back.
let shownDown = '[]';
function downKey() { return JSON.stringify((state && state.status.destinations_down) || []); }

// ---- tabs -----------------------------------------------------------------

function selectTab(id) {
  for (const tab of document.querySelectorAll('[role=tab]')) {
    const on = tab.getAttribute('aria-controls') === id;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`#${tab.getAttribute('aria-controls')}`).hidden = !on;
  }
  if (id === 'destinations') renderDestinations();
  if (id === 'activity') { ignoredAt = 0; renderIgnored(); }
}
for (const tab of document.querySelectorAll('[role=tab]')) {
  tab.addEventListener('click', () => selectTab(tab.getAttribute('aria-controls')));
  tab.addEventListener('keydown', (e) => {
    const tabs = [...document.querySelectorAll('[role=tab]')];
    const i = tabs.indexOf(tab);
    const next = e.key === 'ArrowRight' ? tabs[(i + 1) % tabs.length] : e.key === 'ArrowLeft' ? tabs[(i + tabs.length - 1) % tabs.length] : null;
    if (next) { next.focus(); selectTab(next.getAttribute('aria-controls')); }
  });
}

// ---- add folder -------------------------------------------------------------

function mode() { return document.querySelector('input[name=mode]:checked').value; }
function albumNames() { return $('#add-album-names').value; }
function dateFormat() { return $('#add-date-format').value; }

async function updatePreview() {
  const folder = $('#add-folder').value.trim();
  const list = $('#preview');
  list.replaceChildren();
  if (!folder) return;
  try {
    const albums = await invoke('preview_albums', { folder, mode: mode(), albumNames: albumNames(), dateFormat: dateFormat(), album: $('#add-album').value, allFiles: $('#add-all-files').checked });
    for (const a of albums.slice(0, 50)) list.append(el('li', {}, el('span', { class: 'path', text: a.album }), el('span', { class: 'muted', text: `${a.files} ${a.files === 1 ? 'file' : 'files'}` })));
    if (albums.length > 50) list.append(el('li', { class: 'muted', text: `… and ${albums.length - 50} more` }));
    if (!albums.length) list.append(el('li', { class: 'muted', text: 'No photos or videos yet; new ones will be backed up as they arrive.' }));
  } catch (e) {
    list.append(el('li', { class: 'error', text: e.message || String(e) }));
  }
}

async function openAdd(path) {
  $('#add-error').hidden = true;
  $('#add-form').reset();
  $('#add-album-names').disabled = true;
  $('#add-date-format').disabled = true;
  $('#add-folder').removeAttribute('aria-invalid');
  if (path) $('#add-folder').value = path;
  const dests = await call('list_destinations');
  $('#add-dest').replaceChildren(...dests.map((d) => el('option', { value: d.name, text: d.path ? `${d.name} (${d.path})` : d.name })));
  $('#add-dialog').showModal();
  $('#add-folder').focus();
  updatePreview();
}

$('#add-btn').addEventListener('click', () => openAdd());
$('#add-cancel').addEventListener('click', () => $('#add-dialog').close());
$('#pick').addEventListener('click', async () => {
  const p = await call('pick_folder');
  if (p) { $('#add-folder').value = p; updatePreview(); }
});
let previewTimer;
for (const sel of ['#add-folder', '#add-album']) {
  $(sel).addEventListener('input', () => { clearTimeout(previewTimer); previewTimer = setTimeout(updatePreview, 250); });
}
for (const r of document.querySelectorAll('input[name=mode], #add-all-files, #add-album-names, #add-date-format')) {
  r.addEventListener('change', () => {
    $('#add-album-names').disabled = mode() !== 'per-folder';
    $('#add-date-format').disabled = mode() !== 'by-date';
    updatePreview();
  });
}
$('#add-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const added = await invoke('add_watch', {
      folder: $('#add-folder').value, mode: mode(), albumNames: albumNames(), dateFormat: dateFormat(), album: $('#add-album').value || null,
      dest: $('#add-dest').value, onDelete: $('#add-on-delete').value, allFiles: $('#add-all-files').checked,
    });
    $('#add-dialog').close();
    for (const n of added.notices) toast(n);
    await refresh();
    if (!state.autostart_asked) $('#autostart-dialog').showModal();
  } catch (err) {
    $('#add-error').textContent = err.message || String(err);
    $('#add-error').hidden = false;
    // The folder itself is the problem: mark its field, for a new choice.
    if (FOLDER_CODES.includes(err.code)) {
      $('#add-folder').setAttribute('aria-invalid', 'true');
      $('#add-folder').focus();
    }
  }
});
$('#add-folder').addEventListener('input', () => $('#add-folder').removeAttribute('aria-invalid'));

// ---- remove, pause, activity, settings -------------------------------------

let removing = null;
function askRemove(folder) {
  removing = folder;
  $('#remove-folder').textContent = folder;
  $('#remove-dialog').showModal();
  $('#remove-cancel').focus();
}
$('#remove-cancel').addEventListener('click', () => $('#remove-dialog').close());
$('#remove-ok').addEventListener('click', async () => {
  $('#remove-dialog').close();
  await call('remove_watch', { folder: removing });
  refresh();
});

async function setPaused(paused) { await call('set_paused', { paused }); refresh(); }
$('#pause-btn').addEventListener('click', () => setPaused(!state.status.paused));
$('#paused-setting').addEventListener('change', (e) => setPaused(e.target.checked));
$('#retry-failed').addEventListener('click', () => call('retry_failed').then(refresh));
$('#autostart').addEventListener('change', async (e) => {
  try { e.target.checked = await invoke('set_autostart', { enabled: e.target.checked }); } catch (err) { toast(err.message); }
});
$('#anyway-btn').addEventListener('click', () => call('back_up_now_anyway')
  .then(() => toast('Backing up now, until what held it ends.')));
$('#on-battery').addEventListener('change', (e) => call('set_config', { key: 'on-battery', value: e.target.value })
  .then((c) => {
    e.target.value = c.value;
    toast({ 'keep-going': 'On battery, backups keep going.', 'photos-only': 'On battery, photos go and videos wait for power.', pause: 'On battery, backups pause.' }[c.value]);
  }));
$('#on-metered').addEventListener('change', (e) => call('set_config', { key: 'on-metered', value: e.target.value })
  .then((c) => {
    e.target.value = c.value;
    toast(c.value === 'pause' ? 'On a metered network, uploads to servers pause.' : 'On a metered network, uploads keep going.');
  }));
$('#bandwidth').addEventListener('change', (e) => call('set_config', { key: 'bandwidth', value: e.target.value || 'off' })
  .then((c) => {
    e.target.value = c.value;
    toast(c.value === 'off' ? 'Uploads are not limited.' : `Uploads are limited to ${c.value}.`);
  }));
$('#schedule').addEventListener('change', (e) => call('set_config', { key: 'schedule', value: e.target.value || 'off' })
  .then((c) => {
    e.target.value = c.value;
    toast(c.value === 'off' ? 'Uploads run at any time.'
      : c.value.startsWith('pause') ? `Uploads pause ${c.value.slice(6)}.`
        : c.value.startsWith('limit') ? `Uploads are slowed ${c.value.slice(6)}.` : `Uploads run ${c.value}.`);
  }));
$('#schedule-bandwidth').addEventListener('change', (e) => call('set_config', { key: 'schedule-bandwidth', value: e.target.value || 'off' })
  .then((c) => {
    e.target.value = c.value;
    toast(c.value === 'off' ? 'No limit in the limited hours.' : `Limited to ${c.value} in those hours.`);
  }));
$('#workers').addEventListener('change', (e) => call('set_workers', { workers: Number(e.target.value) }).then(() => toast('Takes effect the next time Shoebox starts.')));
$('#open-library').addEventListener('click', () => call('open_location', { which: 'library' }));
$('#open-logs').addEventListener('click', () => call('open_location', { which: 'logs' }));
async function answerAutostart(enabled) {
  $('#autostart-dialog').close();
  await call('answer_autostart_question', { enabled });
  refresh();
}
$('#autostart-yes').addEventListener('click', () => answerAutostart(true));
$('#autostart-no').addEventListener('click', () => answerAutostart(false));

// ---- destinations -------------------------------------------------------------

const KIND_TEXT = { local: 'folder', webdav: 'WebDAV', s3: 'S3', sftp: 'SFTP', immich: 'Immich' };
let trustedHostKey = '';
let editing = null;

async function renderDestinations() {
  shownDown = downKey();
  const dests = await call('list_destinations');
  const list = $('#dest-list');
  list.replaceChildren();
  for (const d of dests) {
    const where = d.kind === 'sftp'
      ? `${d.user}@${d.url.replace('sftp://', '')}${d.path} · host key ${d.host_key}`
      : (d.path || (d.bucket ? `${d.url} · bucket ${d.bucket}${d.prefix ? ` · prefix ${d.prefix}` : ''}` : d.url))
        + (d.pinned_certificate ? ' · its own certificate is trusted' : '');
    const checks = el('ul', { class: 'rows compact checks', 'aria-live': 'polite' });
    const actions = el('div', { class: 'watch-actions' },
      el('button', { type: 'button', class: 'test-dest-btn', text: 'Test',
        onclick: async () => {
          // A test runs off the window's thread and ends at its time bound;
          // Cancel stops waiting for it (its answer is then dropped).
          const run = { cancelled: false };
          checks.replaceChildren(el('li', { class: 'muted testing' },
            el('span', { text: 'Testing… ' }),
            el('button', { type: 'button', class: 'cancel-test-btn', text: 'Cancel',
              onclick: () => {
                run.cancelled = true;
                checks.replaceChildren(el('li', { class: 'muted', text: 'Test cancelled.' }));
              } })));
          try {
            const result = await invoke('test_destination', { name: d.name });
            if (run.cancelled) return;
            checks.replaceChildren(...result.map((c) => el('li', { class: c.ok ? 'check ok' : 'check error' },
              el('span', { text: `${c.ok ? '✓' : '✗'} ${c.check}` }), el('span', { class: 'muted', text: c.detail }))));
          } catch (e) {
            if (run.cancelled) return;
            checks.replaceChildren(el('li', { class: 'check error', text: e.message || String(e) }));
          }
        } }));
    if (d.kind !== 'local') {
      actions.append(el('button', { type: 'button', class: 'edit-dest-btn', text: 'Edit…', onclick: () => openDest(d) }));
    }
    actions.append(el('button', { type: 'button', class: 'restore-dest-btn', text: 'Restore…', onclick: () => openRestore(d.name) }));
    if (d.encrypted_to) {
      actions.append(el('button', { type: 'button', class: 'export-key-btn', text: 'Export key…', onclick: () => openExportKey(d.name) }));
    }
    if (d.name !== 'library') {
      actions.append(el('button', { type: 'button', class: 'remove-dest-btn', text: 'Remove',
        onclick: () => call('remove_destination', { name: d.name }).then(renderDestinations) }));
    }
    const down = destDown(d.name);
    list.append(el('li', { class: 'dest-row', 'data-name': d.name },
      el('div', { class: 'watch-head' }, el('span', { class: 'folder', text: d.name }),
        el('span', { class: 'state', text: KIND_TEXT[d.kind] || d.kind }),
        down ? el('span', { class: 'state dest-down', text: DEST_DOWN_TEXT[down.code] || 'unavailable' }) : null),
      el('div', { class: 'meta', text: (where || '') + (d.encrypted_to ? ` · encrypted (age)${d.names_hidden ? ', names hidden' : ''}` : '') }),
      d.key_not_exported ? el('div', { class: 'detail key-warning', text: 'Its key was never exported: if this computer is lost, so is the backup. Export it now.' }) : null,
      down ? el('div', { class: 'detail dest-down', text: down.message }) : null, actions, checks));
  }
  const lc = state && state.status && state.status.last_check;
  $('#last-check').hidden = !lc;
  if (lc) {
    const when = new Date(lc.at * 1000).toLocaleString();
    $('#last-check').textContent = lc.missing + lc.damaged > 0
      ? `Last check of the backup (${when}): ${lc.missing} missing and ${lc.damaged} damaged of ${lc.checked} files. `
        + 'Run `shoebox verify --repair` to send them again.'
      : `Last check of the backup (${when}): all ${lc.checked} files are there.`;
    $('#last-check').classList.toggle('error', lc.missing + lc.damaged > 0);
  }
}

function showKind() {
  const kind = $('#dest-kind').value;
  for (const e of document.querySelectorAll('.kind-local')) e.hidden = kind !== 'local';
  for (const e of document.querySelectorAll('.kind-remote')) e.hidden = kind === 'local';
  for (const e of document.querySelectorAll('.kind-s3')) e.hidden = kind !== 's3';
  const sftp = kind === 'sftp';
  for (const e of document.querySelectorAll('.kind-sftp')) e.hidden = !sftp;
  for (const e of document.querySelectorAll('.kind-http')) e.hidden = sftp;
  const signIn = $('#dest-sign-in').value;
  for (const e of document.querySelectorAll('.sign-in-key')) e.hidden = !sftp || signIn !== 'key';
  $('#dest-new-host-key-row').hidden = !(sftp && editing);
  $('#dest-secret').closest('div').hidden = sftp && signIn === 'agent';
  const immich = kind === 'immich';
  // Immich signs in with an API key alone, and never holds encrypted photos.
  $('#dest-user').closest('div').hidden = immich;
  $('#dest-encrypt-row').hidden = !!editing || immich;
  $('#dest-url').type = sftp ? 'text' : 'url';
  $('#dest-url-label').textContent = { s3: 'Endpoint', sftp: 'Server' }[kind] || 'Address';
  $('#dest-url').placeholder = {
    s3: 'https://s3.eu-central-1.amazonaws.com', sftp: 'nas.local', immich: 'https://photos.example.com',
  }[kind]
    || 'https://cloud.example.com/remote.php/dav/files/me/Photos';
  $('#dest-user-label').textContent = kind === 's3' ? 'Access key id' : 'User';
  $('#dest-secret-label').textContent = kind === 's3' ? 'Secret key'
    : immich ? 'API key (Immich: Account Settings → API Keys)'
    : sftp && signIn === 'key' ? 'Passphrase of the key (if it has one)' : 'Password';
}

function openDest(existing) {
  editing = existing || null;
  $('#dest-form').reset();
  $('#dest-error').hidden = true;
  $('#dest-host-key').hidden = true;
  trustedHostKey = '';
  $('#dest-title').textContent = existing ? `Edit ${existing.name}` : 'Add a destination';
  $('#dest-confirm').textContent = existing ? 'Save' : 'Add destination';
  for (const id of ['#dest-name', '#dest-kind', '#dest-path', '#dest-bucket', '#dest-prefix']) $(id).disabled = !!existing;
  if (existing) {
    $('#dest-name').value = existing.name;
    $('#dest-kind').value = existing.kind;
    $('#dest-url').value = existing.url || '';
    $('#dest-url').disabled = existing.kind === 'sftp';
    $('#dest-user').value = existing.user || '';
    $('#dest-bucket').value = existing.bucket || '';
    $('#dest-region').value = existing.region || '';
    $('#dest-prefix').value = existing.prefix || '';
    $('#dest-path-style').checked = !!existing.path_style;
    $('#dest-insecure').checked = !!existing.insecure_http;
    $('#dest-cert').placeholder = existing.pinned_certificate
      ? 'a certificate is pinned; name a file to pin another' : '/path/to/server-certificate.pem';
    $('#dest-secret').placeholder = 'unchanged';
  } else {
    $('#dest-url').disabled = false;
    $('#dest-secret').placeholder = '';
    $('#dest-cert').placeholder = '/path/to/server-certificate.pem';
  }
  $('#dest-forget-cert-row').hidden = !(existing && existing.pinned_certificate);
  $('#dest-encrypt-key').hidden = true;
  showKind();
  $('#dest-dialog').showModal();
  (existing ? $('#dest-url') : $('#dest-name')).focus();
}

$('#add-dest-btn').addEventListener('click', () => openDest());
$('#dest-kind').addEventListener('change', showKind);
$('#dest-sign-in').addEventListener('change', showKind);
$('#dest-trust').addEventListener('click', () => {
  trustedHostKey = $('#dest-host-key-fp').textContent;
  $('#dest-form').requestSubmit();
});
$('#dest-cancel').addEventListener('click', () => $('#dest-dialog').close());
$('#dest-encrypt').addEventListener('change', () => { $('#dest-encrypt-key').hidden = !$('#dest-encrypt').checked; });
$('#dest-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = {
    name: $('#dest-name').value, kind: $('#dest-kind').value, path: $('#dest-path').value,
    url: $('#dest-url').value, user: $('#dest-user').value, secret: $('#dest-secret').value,
    bucket: $('#dest-bucket').value, region: $('#dest-region').value, prefix: $('#dest-prefix').value,
    pathStyle: $('#dest-path-style').checked, allowInsecureHttp: $('#dest-insecure').checked,
    trustCertificate: $('#dest-cert').value, forgetCertificate: $('#dest-forget-cert').checked,
    port: Number($('#dest-port').value) || 22, remotePath: $('#dest-remote-path').value,
    signIn: $('#dest-sign-in').value, keyFile: $('#dest-key-file').value,
    trustHostKey: editing ? $('#dest-new-host-key').value : trustedHostKey,
    encrypt: !editing && $('#dest-encrypt').checked,
    encryptNames: !editing && $('#dest-encrypt').checked && $('#dest-encrypt-names').checked,
    identityFile: $('#dest-identity').value, identityPassphrase: $('#dest-identity-pass').value,
  };
  try {
    const done = editing
      ? await invoke('edit_destination', { edit: form })
      : await invoke('add_destination', { dest: form });
    $('#dest-secret').value = '';
    $('#dest-identity-pass').value = '';
    $('#dest-dialog').close();
    renderDestinations();
    if (done.dest.key_not_exported) {
      // A new key: the user is told, before anything is backed up, that
      // losing it loses the backup, and asked to export it now.
      openExportKey(done.dest.name);
    } else {
      for (const n of done.notices) toast(n);
    }
  } catch (err) {
    if (err.code === 'host_key_unknown') {
      // A server seen for the first time: its fingerprint is shown and the
      // user decides.
      $('#dest-host-key-host').textContent = $('#dest-url').value.trim();
      $('#dest-host-key-fp').textContent = err.fingerprint;
      $('#dest-host-key').hidden = false;
      $('#dest-error').hidden = true;
      $('#dest-trust').focus();
      return;
    }
    $('#dest-host-key').hidden = true;
    $('#dest-error').textContent = err.message || String(err);
    $('#dest-error').hidden = false;
  }
});

// ---- the key of an encrypted destination ---------------------------------------

let exporting = null;

function openExportKey(name) {
  exporting = name;
  $('#key-form').reset();
  $('#key-title').textContent = `Export the key of ${name}`;
  $('#key-warning').textContent = `Everything backed up to ${name} is encrypted with a key that only this computer holds. `
    + 'Save it to a file protected by a passphrase, and keep the file and the passphrase away from this computer: '
    + 'in a password manager, or on a USB stick in a drawer. If this computer is lost and the key file is too, '
    + 'the backup is lost: no one, not even Shoebox, can decrypt it.';
  $('#key-out').value = `~/shoebox-${name.replace(/[^A-Za-z0-9._-]/g, '_')}-key.age`;
  $('#key-done').hidden = true;
  $('#key-error').hidden = true;
  $('#key-ok').disabled = false;
  $('#key-cancel').textContent = 'Later';
  $('#key-dialog').showModal();
  $('#key-pass').focus();
}

$('#key-cancel').addEventListener('click', () => $('#key-dialog').close());
$('#key-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('#key-error').hidden = true;
  if ($('#key-pass').value !== $('#key-pass-again').value) {
    $('#key-error').textContent = 'The two passphrases differ.';
    $('#key-error').hidden = false;
    return;
  }
  try {
    const path = await invoke('export_key', { name: exporting, to: $('#key-out').value, passphrase: $('#key-pass').value });
    $('#key-pass').value = '';
    $('#key-pass-again').value = '';
    $('#key-done').textContent = `Saved to ${path}. To read any file of the backup without Shoebox: age -d -i ${path} FILE.age`;
    $('#key-done').hidden = false;
    $('#key-ok').disabled = true;
    $('#key-cancel').textContent = 'Close';
    renderDestinations();
  } catch (err) {
    $('#key-error').textContent = err.message || String(err);
    $('#key-error').hidden = false;
  }
});

// ---- restore ------------------------------------------------------------------

let restoring = null;
let restorePlan = { files: 0, done: 0 };
// Progress events can arrive after the restore's answer: once it is done,
// they no longer change what the dialog says.
let restoreRunning = false;

function openRestore(name) {
  restoring = name;
  $('#restore-title').textContent = `Restore from ${name}`;
  $('#restore-progress').textContent = '';
  $('#restore-error').hidden = true;
  $('#restore-ok').disabled = false;
  $('#restore-dialog').showModal();
  $('#restore-to').focus();
}

$('#restore-cancel').addEventListener('click', () => $('#restore-dialog').close());
$('#restore-pick').addEventListener('click', async () => {
  const p = await call('pick_folder', { title: 'Choose a folder to restore into' });
  if (p) $('#restore-to').value = p;
});
$('#restore-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  $('#restore-error').hidden = true;
  $('#restore-ok').disabled = true;
  $('#restore-progress').textContent = 'Listing what the destination holds…';
  restoreRunning = true;
  try {
    const r = await invoke('restore_destination', { name: restoring, to: $('#restore-to').value });
    restoreRunning = false;
    const renamed = r.renamed ? ` (${r.renamed} under a new name: theirs was taken)` : '';
    $('#restore-progress').textContent = `Done: restored ${r.restored + r.renamed} file(s)${renamed}, `
      + `${r.already_there} already there, ${r.failed} failed.`;
  } catch (err) {
    restoreRunning = false;
    $('#restore-error').textContent = err.message || String(err);
    $('#restore-error').hidden = false;
  }
  $('#restore-ok').disabled = false;
});
listen('restore', (e) => {
  if (!restoreRunning) return;
  const ev = e.payload;
  if (ev.event === 'planned') restorePlan = { files: ev.files, done: 0 };
  if (ev.event === 'file' || ev.event === 'failed') restorePlan.done += 1;
  $('#restore-progress').textContent = `Restoring: ${restorePlan.done} of ${restorePlan.files} file(s)…`;
});

// ---- events from the shell ---------------------------------------------------

listen('state', (e) => { state = e.payload; render(); });
listen('open-add', () => openAdd());
listen('tauri://drag-drop', (e) => {
  const p = e.payload && e.payload.paths && e.payload.paths[0];
  if (p) openAdd(p);
});

refresh().then(() => { if (location.hash === '#add') openAdd(); });

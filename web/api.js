// The crimecast API client: the session (kept in sessionStorage), requests with the bearer
// token, and one error type with a message fit to show to a person.

const SESSION_KEY = 'crimecast.session';
const EXPIRY_MARGIN_MS = 5000; // treat a token as expired a little early, so no call races its end

export const EXPIRED_MESSAGE = 'Your session expired, please log in again.';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

/** The API's base URL: the page's <meta name="crimecast-api-base">, default "" (same origin). */
export function apiBase() {
  const meta = document.querySelector('meta[name="crimecast-api-base"]');
  return (meta?.getAttribute('content') || '').trim().replace(/\/+$/, '');
}

export function apiUrl(path, query) {
  let url = apiBase() + path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  return url;
}

// --- session -------------------------------------------------------------------------

let session = loadSession();
let expiredHandler = () => {};

function loadSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (stored && typeof stored.token === 'string' && typeof stored.expiresAt === 'number') return stored;
  } catch {
    // a damaged entry is the same as none
  }
  return null;
}

function saveSession(value) {
  session = value;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
}

export function currentSession() {
  return session;
}

export function isExpired(value = session) {
  return !value || Date.now() >= value.expiresAt;
}

export function hasRole(role) {
  return Boolean(session?.roles?.includes(role));
}

export function clearSession() {
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
}

/**
 * Log out on the service too (POST /auth/logout revokes the user's tokens), then forget the
 * session here. The page logs out whatever the answer: an unreachable service or an
 * expired token must not keep anyone signed in on this screen.
 */
export async function logout() {
  const used = session;
  clearSession();
  if (isExpired(used)) return;
  try {
    await fetch(apiUrl('/auth/logout'), {
      method: 'POST', cache: 'no-store', headers: { Authorization: `Bearer ${used.token}`, Accept: 'application/json' },
    });
  } catch {
    // the session is already gone here; the token expires on its own
  }
}

/** Called once when a call finds the session over (401, or its expiry time passed). */
export function onSessionExpired(handler) {
  expiredHandler = handler;
}

function expire(used) {
  if (session && session === used) {
    clearSession();
    expiredHandler();
  }
  return new ApiError(401, 'session_expired', EXPIRED_MESSAGE);
}

/** Refresh the roles from GET /auth/me (a reloaded page checks its token this way). */
export function updateIdentity(me) {
  if (!session || !me) return;
  saveSession({
    ...session,
    username: me.username || session.username,
    roles: Array.isArray(me.roles) ? me.roles : session.roles,
  });
}

// --- requests ------------------------------------------------------------------------

function networkError() {
  return new ApiError(0, 'network', 'Could not reach the crimecast service. Check your connection and try again.');
}

async function readJson(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function sentence(text) {
  const trimmed = String(text).trim();
  if (!trimmed) return trimmed;
  const first = trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** A readable message from any of the API's error bodies. */
export function errorMessage(body, status) {
  const error = body?.error;
  let text = '';
  if (error && typeof error === 'object') text = error.message || error.code || '';
  else if (typeof error === 'string') text = body.error_description || error;
  else if (body && typeof body.message === 'string') text = body.message;
  if (status === 403) return sentence(`You do not have permission to do this${text ? ` (${text.replace(/\.$/, '')})` : ''}`);
  if (status === 429) return 'Too many requests just now. Please wait a moment and try again.';
  if (status >= 500) {
    return sentence(`The crimecast service had a problem${text ? `: ${text.replace(/\.$/, '')}` : ''}`) +
      ' Please try again in a few minutes.';
  }
  if (text) return sentence(text);
  return `The request failed (HTTP ${status}).`;
}

/** POST /auth/token (OAuth2 password grant); stores the session. */
export async function login(username, password) {
  let response;
  try {
    response = await fetch(apiUrl('/auth/token'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({ grant_type: 'password', username, password }),
    });
  } catch {
    throw networkError();
  }
  const body = await readJson(response);
  if (!response.ok) {
    if (response.status === 401 || body?.error === 'invalid_grant') {
      throw new ApiError(response.status, 'invalid_grant',
        'That user name and password do not match. Please check them and try again.');
    }
    throw new ApiError(response.status, body?.error || `http_${response.status}`, errorMessage(body, response.status));
  }
  if (!body || typeof body.access_token !== 'string') {
    throw new ApiError(response.status, 'bad_response', 'The service sent an answer this page does not understand. Please try again.');
  }
  const seconds = Number(body.expires_in) > 0 ? Number(body.expires_in) : 3600;
  saveSession({
    token: body.access_token,
    username,
    roles: String(body.scope || '').split(/\s+/).filter(Boolean),
    expiresAt: Date.now() + seconds * 1000 - Math.min(EXPIRY_MARGIN_MS, seconds * 100),
  });
  return session;
}

/**
 * One authenticated call. Resolves to the JSON body (null for 204); rejects with an
 * ApiError. A 401, or a session past its expiry time, ends the session first.
 */
export async function api(path, { method = 'GET', query, json, headers: extra } = {}) {
  const used = session;
  if (isExpired(used)) throw expire(used);
  const headers = { ...extra, Authorization: `Bearer ${used.token}`, Accept: 'application/json' };
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(apiUrl(path, query), { method, headers, body, cache: 'no-store' });
  } catch {
    if (isExpired(used)) throw expire(used);
    throw networkError();
  }
  if (response.status === 401) throw expire(used);
  if (session !== used) throw new ApiError(401, 'session_expired', EXPIRED_MESSAGE); // logged out meanwhile
  if (response.status === 204) return null;
  const data = await readJson(response);
  if (!response.ok) {
    throw new ApiError(response.status, data?.error?.code || `http_${response.status}`, errorMessage(data, response.status));
  }
  if (data === null) {
    throw new ApiError(response.status, 'bad_response', 'The service sent an answer this page does not understand. Please try again.');
  }
  return data;
}

/** True for the error every view ignores: the page is already back at the login form. */
export function isSessionEnd(error) {
  return error instanceof ApiError && error.code === 'session_expired';
}

/** One authenticated GET answered as text (e.g. CSV with `accept: 'text/csv'`): { text, filename }. */
export async function apiText(path, { query, accept = 'text/csv' } = {}) {
  const used = session;
  if (isExpired(used)) throw expire(used);
  let response;
  try {
    response = await fetch(apiUrl(path, query), { headers: { Authorization: `Bearer ${used.token}`, Accept: accept }, cache: 'no-store' });
  } catch {
    throw networkError();
  }
  if (response.status === 401) throw expire(used);
  if (!response.ok) {
    const data = await readJson(response);
    throw new ApiError(response.status, data?.error?.code || `http_${response.status}`, errorMessage(data, response.status));
  }
  const disposition = response.headers.get('Content-Disposition') || '';
  const filename = /filename="([^"]+)"/.exec(disposition)?.[1] || null;
  return { text: await response.text(), filename };
}

/** Save `text` as a file called `filename` (a download the browser asks about or keeps). */
export function saveFile(text, filename, type = 'text/csv') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

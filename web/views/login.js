// The login view and the session's life: log in, log out, and back to the login form, with
// the address the user wanted kept, when the token expires.

import * as API from '../api.js';
import { $, setText } from '../dom.js';
import { forget } from '../data.js';
import { reroute } from '../router.js';
import { showLoggedIn, showLoggedOut, showView } from '../shell.js';
import * as Admin from './admin.js';

let wanted = null; // the hash to go to after logging in
let expiryTimer = null;

/** Show the login form with `notice` above it (or none). */
function showLogin(notice) {
  showLoggedOut();
  setText('login-notice', notice);
  $('login-error').hidden = true;
  $('login-password').value = '';
  $('login-button').disabled = false;
  if (location.hash !== '#/login') history.replaceState(null, '', '#/login');
  showView('login');
  ($('login-username').value ? $('login-password') : $('login-username')).focus();
}

/** Show the login form for a visitor without a valid session, and come back to `name`'s hash afterwards. */
export function askToLogIn(name) {
  const expired = Boolean(API.currentSession());
  API.clearSession();
  if (name !== 'login') wanted = location.hash;
  showLogin(expired ? API.EXPIRED_MESSAGE : $('login-notice').hidden ? null : $('login-notice').textContent);
}

/** Watch the session's expiry time: at it, back to the login form. */
export function scheduleExpiry() {
  clearTimeout(expiryTimer);
  const current = API.currentSession();
  if (!current) return;
  const wait = Math.min(Math.max(0, current.expiresAt - Date.now()) + 50, 2 ** 31 - 1);
  expiryTimer = setTimeout(() => {
    if (!API.currentSession()) return;
    if (API.isExpired()) {
      API.clearSession();
      sessionEnded(API.EXPIRED_MESSAGE);
    } else {
      scheduleExpiry();
    }
  }, wait);
}

/** Stop what the session runs (the expiry timer, a watched run) and forget what it showed. */
function endSession() {
  clearTimeout(expiryTimer);
  Admin.stop();
  forget();
}

function sessionEnded(message) {
  endSession();
  if (!wanted && location.hash && !location.hash.startsWith('#/login')) wanted = location.hash;
  showLogin(message);
}

function onLoginError(message) {
  const error = $('login-error');
  error.textContent = message;
  error.hidden = false;
}

async function onLogin(event) {
  event.preventDefault();
  const username = $('login-username').value.trim();
  const password = $('login-password').value;
  $('login-error').hidden = true;
  if (!username || !password) {
    onLoginError('Please enter your user name and your password.');
    (username ? $('login-password') : $('login-username')).focus();
    return;
  }
  const button = $('login-button');
  button.disabled = true;
  button.textContent = 'Logging in…';
  try {
    await API.login(username, password);
  } catch (err) {
    onLoginError(err.message);
    $('login-password').select();
    return;
  } finally {
    button.disabled = false;
    button.textContent = 'Log in';
  }
  $('login-password').value = '';
  $('login-notice').hidden = true;
  showLoggedIn();
  scheduleExpiry();
  const target = wanted && !wanted.startsWith('#/login') ? wanted : '#/forecast';
  wanted = null;
  if (location.hash === target) reroute();
  else location.hash = target;
}

function logout() {
  API.logout();
  endSession();
  wanted = null;
  $('login-username').value = '';
  showLogin('You have logged out.');
}

/** Wire the login form and the logout button. */
export function init() {
  API.onSessionExpired(() => sessionEnded(API.EXPIRED_MESSAGE));
  $('login-form').addEventListener('submit', onLogin);
  $('logout-button').addEventListener('click', logout);
}

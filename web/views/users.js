// The admin's users: add one (viewer or admin), delete one after a confirmation.

import { api, currentSession, isSessionEnd } from '../api.js';
import { $, setResult } from '../dom.js';

let pendingDelete = null; // the user the confirmation asks about

const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;

async function addUser(event) {
  event.preventDefault();
  const username = $('new-username').value.trim();
  const password = $('new-password').value;
  const role = $('new-role').value;
  if (!USERNAME.test(username)) {
    setResult('add-user-result', 'A user name needs 1 to 64 letters, digits or . _ @ - (no spaces).', false);
    $('new-username').focus();
    return;
  }
  if (password.length < 12) {
    setResult('add-user-result', 'The password needs at least 12 characters.', false);
    $('new-password').focus();
    return;
  }
  setResult('add-user-result', 'Adding the user…', true);
  try {
    const user = await api('/auth/users', { method: 'POST', json: { username, password, role } });
    const roles = Array.isArray(user?.roles) ? user.roles : [role];
    setResult('add-user-result', `Added “${user?.username || username}” (${roles.includes('admin') ? 'admin' : 'viewer'}).`, true);
    $('add-user-form').reset();
  } catch (err) {
    if (isSessionEnd(err)) return;
    const message = err.status === 409 ? `A user called “${username}” already exists.` : `Could not add the user. ${err.message}`;
    setResult('add-user-result', message, false);
  }
}

function askDelete(event) {
  event.preventDefault();
  const username = $('delete-username').value.trim();
  $('delete-confirm').hidden = true;
  if (!username) {
    setResult('delete-user-result', 'Type the user name to delete.', false);
    $('delete-username').focus();
    return;
  }
  if (username === currentSession()?.username) {
    setResult('delete-user-result', 'You cannot delete the account you are logged in with.', false);
    return;
  }
  pendingDelete = username;
  $('delete-confirm-text').textContent = `Delete the user “${username}”? They will not be able to log in any more.`;
  $('delete-confirm').hidden = false;
  $('delete-user-result').textContent = '';
  $('delete-confirm-no').focus();
}

async function confirmDelete() {
  const username = pendingDelete;
  $('delete-confirm').hidden = true;
  pendingDelete = null;
  if (!username) return;
  setResult('delete-user-result', 'Deleting the user…', true);
  try {
    await api(`/auth/users/${encodeURIComponent(username)}`, { method: 'DELETE' });
    setResult('delete-user-result', `Deleted “${username}”.`, true);
    $('delete-username').value = '';
  } catch (err) {
    if (isSessionEnd(err)) return;
    const message = err.status === 404 ? `There is no user called “${username}”.` : `Could not delete the user. ${err.message}`;
    setResult('delete-user-result', message, false);
  }
  $('delete-username').focus();
}

function cancelDelete() {
  pendingDelete = null;
  $('delete-confirm').hidden = true;
  $('delete-user-button').focus();
}

export function init() {
  $('add-user-form').addEventListener('submit', addUser);
  $('delete-user-form').addEventListener('submit', askDelete);
  $('delete-confirm-yes').addEventListener('click', confirmDelete);
  $('delete-confirm-no').addEventListener('click', cancelDelete);
}

/** Forget what the forms said. */
export function stop() {
  for (const id of ['add-user-result', 'delete-user-result']) $(id).textContent = '';
  $('add-user-form').reset();
  $('delete-user-form').reset();
  $('delete-confirm').hidden = true;
}

// The admin view: for admins only. Its parts are the runs (start, watch, history), the model
// versions (serve an earlier one again) and the users.

import * as API from '../api.js';
import { $ } from '../dom.js';
import { ADMIN_CARDS } from './admin-cards.js';
import * as Models from './models.js';
import * as Runs from './runs.js';
import * as Users from './users.js';

/** Put the admin's cards in the page and wire them. */
export function init() {
  $('admin-content').innerHTML = ADMIN_CARDS;
  Runs.init();
  Models.init();
  Users.init();
}

/** Show the admin's parts to an admin, and to anyone else why not. */
export function enter() {
  const allowed = API.hasRole('admin');
  $('admin-forbidden').hidden = allowed;
  $('admin-content').hidden = !allowed;
  if (allowed) {
    Runs.loadHistory();
    Models.enter();
  }
}

/** Stop watching (logout or an expired session) and forget what the page showed. */
export function stop() {
  Runs.stop();
  Users.stop();
}

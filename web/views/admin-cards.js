// The admin view's cards (jobs, run history, model versions, users), as markup: views/admin.js
// puts them in the page at start-up, so the page's own file holds the views every user sees.

export const ADMIN_CARDS = `
        <section class="card" aria-labelledby="jobs-heading">
          <h2 class="card-title" id="jobs-heading">Update the data and the model</h2>
          <p><strong>Ingest</strong> fetches the latest crime reports from the city's data portal and counts them by month.
            <strong>Retrain</strong> fits the model again on those counts, tests it, and serves its forecasts if it passes.
            Both run in the background and can take a while.</p>
          <div class="job-row">
            <div class="field">
              <label for="ingest-mode">What to fetch</label>
              <select id="ingest-mode">
                <option value="incremental">Recent months only (usual)</option>
                <option value="backfill">Whole history since 2001 (slow)</option>
              </select>
            </div>
            <button type="button" class="button" id="start-ingest">Start an ingest</button>
          </div>
          <div class="job-row">
            <button type="button" class="button" id="start-retrain">Start a retrain</button>
          </div>
          <div class="run-watch" id="run-watch" aria-live="polite" hidden></div>
        </section>

        <section class="card card-wide" aria-labelledby="history-heading">
          <div class="card-head">
            <h2 class="card-title" id="history-heading">Run history</h2>
            <div class="field field-inline">
              <label for="history-kind">Show</label>
              <select id="history-kind">
                <option value="">All runs</option>
                <option value="retrain">Retrains</option>
                <option value="ingest">Ingests</option>
                <option value="evaluate">Evaluations</option>
                <option value="promote">Rollbacks</option>
              </select>
              <button type="button" class="button button-secondary" id="history-refresh">Refresh</button>
            </div>
          </div>
          <p class="status" id="history-status" role="status" aria-live="polite"></p>
          <div class="table-scroll" tabindex="0">
            <table class="data-table runs-table" id="history-table" hidden>
              <thead><tr><th scope="col">Started</th><th scope="col">Kind</th><th scope="col">Status</th><th scope="col">Took</th>
                <th scope="col">Key figures</th><th scope="col">Promotion decision</th></tr></thead>
              <tbody></tbody>
            </table>
          </div>
        </section>

        <section class="card card-wide" aria-labelledby="models-heading">
          <div class="card-head">
            <h2 class="card-title" id="models-heading">Model versions</h2>
            <button type="button" class="button button-secondary" id="models-refresh">Refresh</button>
          </div>
          <p>Each retrain makes a version; the one serving answers every forecast. If a new version does worse,
            serve an earlier one again: give the reason, it is kept with the change.</p>
          <p class="status" id="models-status" role="status" aria-live="polite"></p>
          <div class="table-scroll" tabindex="0">
            <table class="data-table" id="models-table" hidden>
              <caption class="visually-hidden">Model versions, newest first</caption>
              <thead><tr><th scope="col">Version</th><th scope="col">Serving</th><th scope="col" class="num">Series</th>
                <th scope="col" class="num">Backtest MASE</th><th scope="col" class="num">Coverage</th><th scope="col" class="num">Live MASE</th>
                <th scope="col">Last served</th><th scope="col">Action</th></tr></thead>
              <tbody></tbody>
            </table>
          </div>
          <form class="stack rollback-form" id="rollback-form" novalidate hidden>
            <h3 id="rollback-heading">Serve <span id="rollback-version"></span> again</h3>
            <div class="field">
              <label for="rollback-reason">Why</label>
              <textarea id="rollback-reason" rows="2" maxlength="500" required></textarea>
            </div>
            <div class="button-row">
              <button type="submit" class="button button-danger" id="rollback-confirm">Serve this version</button>
              <button type="button" class="button button-secondary" id="rollback-cancel">Cancel</button>
            </div>
          </form>
          <p class="form-result" id="rollback-result" role="status" aria-live="polite"></p>
        </section>

        <section class="card" aria-labelledby="users-heading">
          <h2 class="card-title" id="users-heading">Users</h2>
          <form id="add-user-form" class="stack" novalidate>
            <h3>Add a user</h3>
            <div class="field">
              <label for="new-username">User name</label>
              <input id="new-username" autocomplete="off" autocapitalize="none" spellcheck="false" required maxlength="64"
                     aria-describedby="new-username-hint">
              <p class="hint" id="new-username-hint">Letters, digits and . _ @ - only.</p>
            </div>
            <div class="field">
              <label for="new-password">Password</label>
              <input id="new-password" type="password" autocomplete="new-password" required minlength="12"
                     aria-describedby="new-password-hint">
              <p class="hint" id="new-password-hint">At least 12 characters (at most 72 bytes), and not a common password.</p>
            </div>
            <div class="field">
              <label for="new-role">Role</label>
              <select id="new-role">
                <option value="viewer">Viewer (forecasts and map)</option>
                <option value="admin">Admin (also updates and users)</option>
              </select>
            </div>
            <button type="submit" class="button">Add user</button>
            <p class="form-result" id="add-user-result" role="status" aria-live="polite"></p>
          </form>

          <form id="delete-user-form" class="stack" novalidate>
            <h3>Delete a user</h3>
            <div class="field">
              <label for="delete-username">User name</label>
              <input id="delete-username" autocomplete="off" autocapitalize="none" spellcheck="false" required maxlength="64">
            </div>
            <button type="submit" class="button button-danger" id="delete-user-button">Delete user</button>
            <div class="confirm" id="delete-confirm" hidden>
              <p id="delete-confirm-text"></p>
              <div class="button-row">
                <button type="button" class="button button-danger" id="delete-confirm-yes">Yes, delete</button>
                <button type="button" class="button button-secondary" id="delete-confirm-no">Cancel</button>
              </div>
            </div>
            <p class="form-result" id="delete-user-result" role="status" aria-live="polite"></p>
          </form>
        </section>
      `;

// One way to build and update DOM nodes, shared by the page's modules.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** An element with properties (className, text, on<event> listeners, attributes; true sets an empty one) and children. */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'className') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key.startsWith('on')) node.addEventListener(key.slice(2).toLowerCase(), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  node.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

/** A table cell for a number (right-aligned). */
export function numCell(text) {
  return h('td', { className: 'num', text });
}

/** Show `text` in the element, or hide the element when there is none. */
export function setText(id, text) {
  const node = $(id);
  node.textContent = text || '';
  node.hidden = !text;
}

/** A form's outcome line: `ok` colours it as done, otherwise as an error. */
export function setResult(id, message, ok) {
  const node = $(id);
  node.textContent = message;
  node.className = `form-result ${ok ? 'is-ok' : 'is-error'}`;
}

/** A view's problem box with `message`, and a "Try again" button when `retry` is given. */
export function showProblem(id, message, retry) {
  const box = $(id);
  box.replaceChildren(h('p', { text: message }));
  if (retry) box.append(h('button', { type: 'button', className: 'button button-secondary', onclick: retry, text: 'Try again' }));
  box.hidden = false;
}

/**
 * Run `render()`; when it throws (the service sent data the page does not understand), hide
 * `resultId` and say in `problemId` that `what` could not be drawn.
 */
export function renderOrExplain(render, resultId, problemId, what) {
  try {
    render();
  } catch (err) {
    console.error(err);
    $(resultId).hidden = true;
    showProblem(problemId, `${what} could not be drawn: the service sent data this page does not understand. ` +
      'Please reload the page; if it keeps happening, tell the crimecast team.');
  }
}

/** Give `select` one option per value (kept when they are already these), then choose `current`. */
export function fillSelect(select, values, label, current) {
  const shown = [...select.options].map((o) => o.value);
  if (shown.length !== values.length || shown.some((v, i) => v !== values[i])) {
    select.replaceChildren(...values.map((value) => h('option', { value, text: label(value) })));
  }
  select.value = current;
}

/** A tooltip's text: a bold heading, then one line each. */
export function fillTooltip(tip, heading, lines) {
  tip.replaceChildren(h('strong', { text: heading }), ...lines.flatMap((line) => [h('br'), line]));
  tip.hidden = false;
}

/**
 * Put a tooltip beside the point (`left`, `top`) of a box `width` wide: to its right, or to
 * its left past `flipAt` of the width, `gap` away and `lift` higher, never above `minTop`.
 */
export function placeTooltip(tip, left, top, width, { flipAt, gap, lift, minTop }) {
  const flip = left > width * flipAt;
  tip.style.left = `${flip ? left - gap : left + gap}px`;
  tip.style.top = `${Math.max(minTop, top - lift)}px`;
  tip.style.transform = flip ? 'translateX(-100%)' : 'none';
}

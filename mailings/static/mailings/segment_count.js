/* A segment's live count of members, beside its conditions, as they change.
 *
 * The box (mailings/segments_admin.py, members_html) shows the saved segment's count, rendered
 * by the server. This script sends the form's own fields, "match" and the conditions' inline
 * formset, to count.json once the campaigner pauses, one request at a time (a newer one
 * cancels the older): the server checks them with the form that saves them, so a condition
 * that is not complete yet answers with the form's own message instead of a count.
 *
 * Rows added and removed by the inline's buttons fire formset:added and formset:removed;
 * clicks and keys anywhere in the form ask for a fresh look, and a request goes out only when
 * the fields differ from those counted. A page that cannot edit (view permission only) has no
 * "match" field to read, and keeps the saved count.
 */
'use strict';
{
    const PREFIX = 'conditions-';
    // Long enough for a few clicks or keystrokes in a row to cost one count.
    const PAUSE_MS = 400;

    // The form's segment fields as a query string, or null when they cannot be edited.
    function currentQuery(form) {
        if (!form.querySelector('select[name="match"], input[name="match"]')) {
            return null;
        }
        const params = new URLSearchParams();
        for (const [name, value] of new FormData(form)) {
            if (typeof value !== 'string' || name.includes('__prefix__')) {
                continue;
            }
            if (name === 'match' || name.startsWith(PREFIX)) {
                params.append(name, value);
            }
        }
        return params.toString();
    }

    // Say it as the server does (describe_count): "1,204 members who may be mailed".
    function describe(count) {
        const noun = count === 1 ? 'member' : 'members';
        return count.toLocaleString('en-US') + ' ' + noun + ' who may be mailed';
    }

    function init() {
        const box = document.querySelector('.segment-count[data-url]');
        const form = box && box.closest('form');
        if (!form) {
            return;
        }
        const text = box.querySelector('.segment-count-text');
        const busy = box.querySelector('.segment-count-busy');
        // A change page, as it loads, shows the saved segment's count: the form as it stands.
        // The add page, and a form sent back with errors, are counted at once.
        let shown = 'countedSaved' in box.dataset ? currentQuery(form) : null;
        let requested = null;
        let request = null;
        let timer = null;

        function count(query) {
            request = new AbortController();
            const thisRequest = request;
            requested = query;
            busy.hidden = false;
            text.setAttribute('aria-busy', 'true');
            fetch(box.dataset.url + '?' + query, {
                headers: {Accept: 'application/json'},
                credentials: 'same-origin',
                signal: thisRequest.signal,
            })
                .then((response) => response.json().catch(() => ({})).then((data) => {
                    if (!response.ok) {
                        throw new Error(data.error || 'the server answered ' + response.status);
                    }
                    return data;
                }))
                .then((data) => {
                    text.textContent = describe(data.count);
                    shown = query;
                })
                .catch((error) => {
                    if (error.name !== 'AbortError') {
                        text.textContent = 'Cannot count the members: ' + error.message;
                        shown = null;
                    }
                })
                .finally(() => {
                    if (request === thisRequest) {
                        request = null;
                        requested = null;
                        busy.hidden = true;
                        text.removeAttribute('aria-busy');
                    }
                });
        }

        function refresh() {
            const query = currentQuery(form);
            if (query === null || query === requested) {
                return;
            }
            if (request) {
                request.abort();
                request = null;
                requested = null;
                busy.hidden = true;
                text.removeAttribute('aria-busy');
            }
            if (query !== shown) {
                count(query);
            }
        }

        function later() {
            clearTimeout(timer);
            timer = setTimeout(refresh, PAUSE_MS);
        }

        for (const type of ['input', 'change', 'click', 'dblclick', 'keyup']) {
            form.addEventListener(type, later);
        }
        for (const type of ['formset:added', 'formset:removed']) {
            document.addEventListener(type, later);
        }
        refresh();
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', init);
    } else {
        init();
    }
}

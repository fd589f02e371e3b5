/* A count that stays live beside a form's fields as the campaigner edits them: what the mailing
 * form's "Recipients" (audience_count.js) and a segment's members (segment_count.js) share.
 *
 * The box, rendered by the server with the saved count, names the count's URL in data-url and
 * holds a text (<name>-text) and a busy sign (<name>-busy). Once the campaigner pauses, the
 * page's fields go to that URL as a query string, one request at a time (a newer one cancels
 * the older, so a slow answer never overwrites a newer one), and only when they differ from
 * those the text already counts. The page's script says which fields, how to word the answer,
 * and which events may change the fields; it is loaded after this one (Media keeps the order),
 * and the page's policy runs both as 'self' scripts.
 */
'use strict';
window.rallyLiveCount = {
    // Long enough for a few clicks or keystrokes in a row to cost one count.
    PAUSE_MS: 400,
    // The events by which an edit shows itself: the tag widgets' buttons fire only clicks.
    EDITS: ['input', 'change', 'click', 'dblclick', 'keyup'],

    /* Keep the box of class `name` live. `page` has:
     *   currentQuery(form): the fields as a query string, null when none can be edited;
     *   describe(data): the text for the URL's answer;
     *   failure: what cannot be counted, said before an error's message;
     *   countedQuery(box, form): the query the server's text counts (none: count at once);
     *   watch(box, form, later): call later() on the events that may change the fields.
     */
    start(name, page) {
        const PAUSE_MS = this.PAUSE_MS;

        function init() {
            const box = document.querySelector('.' + name + '[data-url]');
            const form = box && box.closest('form');
            if (!form) {
                return;
            }
            const text = box.querySelector('.' + name + '-text');
            const busy = box.querySelector('.' + name + '-busy');
            let shown = page.countedQuery(box, form);
            let requested = null;
            let request = null;
            let timer = null;

            function settle() {
                request = null;
                requested = null;
                busy.hidden = true;
                text.removeAttribute('aria-busy');
            }

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
                        text.textContent = page.describe(data);
                        shown = query;
                    })
                    .catch((error) => {
                        if (error.name !== 'AbortError') {
                            text.textContent = page.failure + ': ' + error.message;
                            shown = null;
                        }
                    })
                    .finally(() => {
                        // A cancelled request finishes after its successor started.
                        if (request === thisRequest) {
                            settle();
                        }
                    });
            }

            function refresh() {
                const query = page.currentQuery(form);
                if (query === null || query === requested) {
                    return;
                }
                if (request) {
                    request.abort();
                    settle();
                }
                if (query !== shown) {
                    count(query);
                }
            }

            function later() {
                clearTimeout(timer);
                timer = setTimeout(refresh, PAUSE_MS);
            }

            page.watch(box, form, later);
            refresh();
        }

        if (document.readyState === 'loading') {
            document.addEventListener('DOMContentLoaded', init);
        } else {
            init();
        }
    },
};

/* The mailing form's live "Recipients": how many the audience fields pick, as they change.
 *
 * The field (mailings/admin_views/audience.py) shows the saved audience's count, rendered by
 * the server. This script reads the audience fields as they stand and asks audience.json for
 * their count once the campaigner pauses, one request at a time (a newer one cancels the
 * older). It sends every field, so the answer is for the form as shown, saved or not.
 *
 * The filter_horizontal tag widgets (Django's SelectFilter2.js) keep the chosen tags as the
 * options of a second select, "id_<field>_to" (all of them in SelectBox.cache while a filter
 * hides some), and move them with buttons and double clicks that fire no change event: so
 * clicks and keys anywhere in the fieldset ask for a fresh look, and a request goes out only
 * when the conditions differ from those counted.
 */
'use strict';
{
    const TAG_FIELDS = ['audience_include_tags', 'audience_exclude_tags'];
    const OTHER_FIELDS = [
        'audience_signed_petition', 'audience_not_signed_petition',
        'audience_language', 'audience_country',
        'audience_segment', 'include_dormant', 'purpose',
    ];
    // Long enough for a few clicks or keystrokes in a row to cost one count.
    const PAUSE_MS = 400;

    // The chosen tag ids, or null when the field is read-only (a mailing already sent).
    function chosenTagIds(name) {
        const id = 'id_' + name;
        const cached = window.SelectBox && window.SelectBox.cache[id + '_to'];
        if (cached) {
            return cached.map((node) => node.value);
        }
        const chosen = document.getElementById(id + '_to');
        if (chosen) {
            return Array.from(chosen.options, (option) => option.value);
        }
        // Before SelectFilter has turned the plain multiple select into the widget.
        const plain = document.getElementById(id);
        if (plain && plain.tagName === 'SELECT') {
            return Array.from(plain.selectedOptions, (option) => option.value);
        }
        return null;
    }

    // The query string for the form's conditions, written as the server writes the saved ones
    // (conditions_query): same order, ids ascending, an empty parameter for no condition.
    // Null when no audience field can be edited.
    function currentQuery(form) {
        const params = new URLSearchParams();
        let editable = false;
        for (const name of TAG_FIELDS) {
            const ids = chosenTagIds(name);
            if (ids === null) {
                continue;
            }
            editable = true;
            const sorted = ids.filter(Boolean).map(Number).sort((a, b) => a - b);
            if (sorted.length) {
                sorted.forEach((tagId) => params.append(name, tagId));
            } else {
                params.append(name, '');
            }
        }
        for (const name of OTHER_FIELDS) {
            const field = form.elements.namedItem(name);
            if (!field) {
                continue;
            }
            editable = true;
            if (field.type === 'checkbox') {
                params.append(name, field.checked ? 'on' : '');
                continue;
            }
            const value = field.value.trim();
            params.append(name, name === 'audience_country' ? value.toUpperCase() : value);
        }
        return editable ? params.toString() : null;
    }

    // Say it as the server does (describe_counts): "1,204 recipients (en: 1,000, ru: 204)".
    function describe(data) {
        const number = (n) => n.toLocaleString('en-US');
        const noun = data.count === 1 ? 'recipient' : 'recipients';
        const languages = Object.entries(data.by_language)
            .map(([language, n]) => language + ': ' + number(n))
            .join(', ');
        return number(data.count) + ' ' + noun + ' (' + languages + ')';
    }

    function init() {
        const box = document.querySelector('.audience-count[data-url]');
        const form = box && box.closest('form');
        if (!form) {
            return;
        }
        const text = box.querySelector('.audience-count-text');
        const busy = box.querySelector('.audience-count-busy');
        // What the text counts now: the saved conditions on a change page, nothing yet on
        // the add page (so it counts at once).
        let shown = box.dataset.countedQuery;
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
                    text.textContent = describe(data);
                    shown = query;
                })
                .catch((error) => {
                    if (error.name !== 'AbortError') {
                        text.textContent = 'Cannot count the recipients: ' + error.message;
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

        const fieldset = box.closest('fieldset') || form;
        for (const type of ['input', 'change', 'click', 'dblclick', 'keyup']) {
            fieldset.addEventListener(type, later);
        }
        refresh();
    }

    if (document.readyState === 'loading') {
        document.addEventListener('DOMContentLoaded', init);
    } else {
        init();
    }
}

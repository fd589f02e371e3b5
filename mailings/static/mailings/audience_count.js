/* The mailing form's live "Recipients": how many the audience fields pick, as they change.
 *
 * The field (mailings/admin_views/audience.py) shows the saved audience's count, rendered by
 * the server. This script reads the audience fields as they stand and, through live_count.js,
 * asks audience.json for their count once the campaigner pauses. It sends every field, so the
 * answer is for the form as shown, saved or not.
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

    window.rallyLiveCount.start('audience-count', {
        currentQuery,
        describe,
        failure: 'Cannot count the recipients',
        // The saved conditions on a change page, nothing yet on the add page (so it counts
        // at once).
        countedQuery: (box) => box.dataset.countedQuery,
        watch(box, form, later) {
            const fieldset = box.closest('fieldset') || form;
            for (const type of window.rallyLiveCount.EDITS) {
                fieldset.addEventListener(type, later);
            }
        },
    });
}

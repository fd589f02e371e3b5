/* A segment's live count of members, beside its conditions, as they change.
 *
 * The box (mailings/segments_admin.py, members_html) shows the saved segment's count, rendered
 * by the server. This script sends the form's own fields, "match" and the conditions' inline
 * formset, to count.json once the campaigner pauses (through live_count.js): the server checks
 * them with the form that saves them, so a condition that is not complete yet answers with the
 * form's own message instead of a count.
 *
 * Rows added and removed by the inline's buttons fire formset:added and formset:removed;
 * clicks and keys anywhere in the form ask for a fresh look, and a request goes out only when
 * the fields differ from those counted. A page that cannot edit (view permission only) has no
 * "match" field to read, and keeps the saved count.
 */
'use strict';
{
    const PREFIX = 'conditions-';

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
    function describe({count}) {
        const noun = count === 1 ? 'member' : 'members';
        return count.toLocaleString('en-US') + ' ' + noun + ' who may be mailed';
    }

    window.rallyLiveCount.start('segment-count', {
        currentQuery,
        describe,
        failure: 'Cannot count the members',
        // A change page, as it loads, shows the saved segment's count: the form as it stands.
        // The add page, and a form sent back with errors, are counted at once.
        countedQuery: (box, form) => ('countedSaved' in box.dataset ? currentQuery(form) : null),
        watch(box, form, later) {
            for (const type of window.rallyLiveCount.EDITS) {
                form.addEventListener(type, later);
            }
            for (const type of ['formset:added', 'formset:removed']) {
                document.addEventListener(type, later);
            }
        },
    });
}

-- A batch of signatures in one statement: supporters, consent records and signatures at once.
-- Filled in by postgres.py: $names are table names (from the models' _meta) and the rules of
-- rules.py as SQL; %(names)s are the batch's values, as arrays.
--
-- SET LOCAL: the timeout holds for this batch only. With client-side binding (Django's
-- default) the three statements go as one simple query, which PostgreSQL runs as one
-- transaction; inside a caller's transaction the timeout is put back once the batch is written.
-- Supporters are upserted in email order, so two batches lock the same rows in the same order.
-- In RETURNING, xmax is 0 on a row the statement inserted and set on one it updated.
-- `was` names the row as it stood before an upsert (not `old`: PostgreSQL 18 gives that name
-- a meaning of its own in RETURNING).
-- No literal in this file holds a space: postgres.py folds its white space.
SET LOCAL statement_timeout = %(timeout_ms)s;
WITH open_petition AS (
    SELECT id, requires_confirmation FROM $petition_table
    WHERE id = ANY(%(petition_ids)s::bigint[]) AND is_open
),
signing AS (
    SELECT s.*, $awaits_confirmation AS awaits, $consent_subscribes AS subscribes
    FROM unnest(%(sign_petition)s::bigint[], %(sign_email)s::text[], %(sign_mailing)s::bigint[],
                %(sign_source)s::text[], %(sign_confirmed)s::boolean[],
                %(sign_consent)s::boolean[], %(sign_any_consent)s::boolean[])
        AS s(petition_id, email, mailing_id, source, confirmed, consent, any_consent)
    JOIN open_petition p ON p.id = s.petition_id
),
supporter AS (
    INSERT INTO $supporter_table AS was (email, first_name, last_name, country, postcode,
        language, status, source, created_at, updated_at)
    SELECT email, first_name, last_name, country, postcode, language,
        CASE WHEN EXISTS (SELECT FROM signing WHERE signing.email = u.email AND subscribes)
            THEN '$subscribed' ELSE '$unsubscribed' END,
        source, %(now)s, %(now)s
    FROM unnest(%(emails)s::text[], %(first_names)s::text[], %(last_names)s::text[],
                %(countries)s::text[], %(postcodes)s::text[], %(languages)s::text[],
                %(sources)s::text[])
        AS u(email, first_name, last_name, country, postcode, language, source)
    WHERE email IN (SELECT email FROM signing)
    ORDER BY email
    ON CONFLICT (email) DO UPDATE SET
        $fill_blanks,
        status = CASE WHEN $resubscribes THEN '$subscribed' ELSE was.status END,
        unsubscribed_at = CASE WHEN $resubscribes THEN NULL ELSE was.unsubscribed_at END,
        updated_at = CASE WHEN $fills_a_blank OR $resubscribes
            THEN EXCLUDED.updated_at ELSE was.updated_at END
    RETURNING was.id, was.email
),
consent AS (
    INSERT INTO $consent_table (supporter_id, wording, source_url, ip_truncated, created_at)
    SELECT supporter.id, c.wording, c.source_url, c.ip_truncated, %(now)s
    FROM unnest(%(consent_petition)s::bigint[], %(consent_email)s::text[],
                %(consent_wording)s::text[], %(consent_source_url)s::text[],
                %(consent_ip)s::inet[])
        AS c(petition_id, email, wording, source_url, ip_truncated)
    JOIN supporter USING (email)
    WHERE c.petition_id IN (SELECT id FROM open_petition)
),
-- Each signer acted: their engagement row (supporters/engagement_records.py, the portable
-- writer's twin), locked in id order as the send queue locks them. The statement's time is
-- the latest of any engagement.
acted AS (
    INSERT INTO $engagement_table (supporter_id, last_acted_at, last_engaged_at)
    SELECT id, %(now)s, %(now)s FROM supporter ORDER BY id
    ON CONFLICT (supporter_id) DO UPDATE
        SET (last_acted_at, last_engaged_at, mailings_since_engaged) = (%(now)s, %(now)s, 0)
),
-- A signing that does not await confirmation confirms an earlier unconfirmed signature.
signature AS (
    INSERT INTO $signature_table AS was (petition_id, supporter_id, created_at,
        confirmed_at, mailing_id, source, consented)
    SELECT signing.petition_id, supporter.id, %(now)s,
        CASE WHEN NOT signing.awaits THEN %(now)s::timestamptz END,
        (SELECT id FROM $mailing_table WHERE id = signing.mailing_id),
        signing.source, signing.consent
    FROM signing JOIN supporter USING (email)
    ON CONFLICT (petition_id, supporter_id) DO UPDATE SET confirmed_at = EXCLUDED.confirmed_at
        WHERE was.confirmed_at IS NULL AND EXCLUDED.confirmed_at IS NOT NULL
    RETURNING was.id, was.petition_id, was.supporter_id, was.confirmed_at,
        was.consented, was.xmax = 0 AS inserted
)
SELECT signing.petition_id, signing.email, signature.id, signature.inserted,
    signature.confirmed_at, signature.consented,
    supporter.id
FROM signing
JOIN supporter USING (email)
LEFT JOIN signature
    ON signature.petition_id = signing.petition_id AND signature.supporter_id = supporter.id;
SET LOCAL statement_timeout TO DEFAULT

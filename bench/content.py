"""The benchmark mailing: an appeal of realistic size (≈5 KB of HTML) with six merge fields."""

PARAGRAPH = (
    '<p style="margin:0 0 16px;font-family:Georgia,serif;font-size:17px;line-height:1.6;'
    'color:#1a1a1a">Peaceful protesters were detained in their hundreds this weekend, and the '
    "people who organised the marches now face charges that could keep them in prison for "
    "years. Their families have not been told where some of them are held. International "
    "attention is the one thing that has made a difference in cases like these before.</p>\n"
)

HTML_BODY = (
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0">'
    '<tr><td style="padding:24px">\n'
    '<p>Dear {{ first_name|default:"friend" }},</p>\n'
    + PARAGRAPH
    * 5
    + '<p>{{ full_name }}, as a supporter in {{ country|default:"your country" }}, your name '
    "carries weight with the officials we are writing to.</p>\n"
    '<p style="text-align:center"><a href="{{ petition_url }}" style="background:#8a1c1c;'
    'color:#fff;padding:14px 28px;text-decoration:none;font-weight:bold">Sign the petition</a>'
    "</p>\n"
    + PARAGRAPH
    * 5
    + '<p><em>P.S. It takes a minute: <a href="{{ petition_url }}">add your name now</a>.'
    "</em></p>\n"
    '<p style="font-size:12px;color:#666">This email was sent to {{ email }}. '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> with one click.</p>\n'
    "</td></tr></table>"
)

TEXT_BODY = (
    'Dear {{ first_name|default:"friend" }},\n\n'
    "Peaceful protesters were detained in their hundreds this weekend. International attention "
    "is the one thing that has made a difference in cases like these before.\n\n"
    "{{ full_name }}, please sign: {{ petition_url }}\n\n"
    "P.S. It takes a minute: {{ petition_url }}\n\n"
    "Sent to {{ email }}. Unsubscribe: {{ unsubscribe_url }}\n"
)

SUBJECT = '{{ first_name|default:"Friend" }}, they were detained for marching'

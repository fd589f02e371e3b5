"""The words of the demo: a petition and appeal for Aleksei Navalny, and a Russian petition.

Facts come from the public record of January 2021 and January 2023; every sentence is our own.
"""

NAVALNY_CAMPAIGN = {
    "slug": "free-navalny",
    "name": "Free Aleksei Navalny",
    "description": "Rapid response after Aleksei Navalny's arrest in Moscow, January 2021.",
}

NAVALNY_PETITION = {
    "slug": "free-navalny",
    "title": "Release Aleksei Navalny now",
    "target": "President of the Russian Federation",
    "goal": 50000,
    "language": "en",
    "body": """
<p>Aleksei Navalny was arrested on 17 January 2021, minutes after his plane landed in Moscow.
He was coming home from Germany, where he had spent five months recovering from poisoning with
a Novichok nerve agent.</p>
<p>His only offence is speaking out. Through the Anti-Corruption Foundation he set up in 2011,
he has exposed wealth and favours at the top of Russian public life, and for that he and his
colleagues have faced raids, fabricated charges and violence.</p>
<p>We call on the President of the Russian Federation to free Aleksei Navalny immediately and
unconditionally, and to stop harassing everyone who criticises the authorities.</p>
""".strip(),
}

# The same petition for Russian-speaking readers (PetitionTranslation).
NAVALNY_PETITION_RU = {
    "language": "ru",
    "title": "Немедленно освободите Алексея Навального",
    "target": "Президенту Российской Федерации",
    "consent_wording": "Сообщайте мне об этой и других кампаниях по эл. почте. "
    "Я могу отписаться в любой момент.",
    "body": """
<p>Алексея Навального задержали 17 января 2021 года, через несколько минут после посадки его
самолёта в Москве. Он возвращался из Германии, где пять месяцев восстанавливался после
отравления боевым веществом «Новичок».</p>
<p>Его единственная «вина» — то, что он говорит правду. Фонд борьбы с коррупцией, который он
основал в 2011 году, рассказывал о богатстве и привилегиях первых лиц страны, и за это его и
его коллег преследуют обысками, сфабрикованными делами и насилием.</p>
<p>Мы призываем Президента Российской Федерации немедленно и без условий освободить Алексея
Навального и прекратить преследование всех, кто критикует власть.</p>
""".strip(),
}

# The sender is the first of RALLY_SENDERS (seed_demo); the layout adds the unsubscribe footer.
# The HTML is the editor's own markup (mailings/content/body_editor.py), so the appeal opens in
# it whole; the email layout gives the link with class="button" its look.
NAVALNY_MAILING = {
    "name": "Navalny rapid response — first appeal",
    "subject": '{{ first_name|default:"Friend" }}, add your name for Aleksei Navalny',
    "preheader": "Thousands were detained for protesting. Your voice matters right now.",
    "html_body": """
<p>Dear {{ first_name|default:"friend" }},</p>
<p>Last Saturday, crowds filled the streets of Moscow and dozens of other Russian cities to
protest the jailing of opposition leader Aleksei Navalny. The police answered with force: more
than 1,300 people were detained in a single day.</p>
<p>Aleksei was seized at the airport on 17 January, the moment he returned from Germany, where
doctors had spent five months treating him after a Novichok poisoning last August.</p>
<p>He is being punished for peaceful activism and for saying what he thinks. We consider him a
prisoner of conscience, and we are asking people everywhere to say so too.</p>
<p><strong>Will you sign the petition calling for his immediate and unconditional release, and
for an end to the persecution of everyone who criticises the Russian authorities?</strong></p>
<p><a class="button" href="{{ petition_url }}">Sign the petition</a></p>
<p>Our observers saw peaceful marchers beaten with batons. Days later, police searched the homes
and offices of opposition activists and journalists, Aleksei's among them. More protests are
planned for Sunday, and the world needs to be watching.</p>
<p>In solidarity,<br>Hilary<br>Crisis campaigner, Rally Demo</p>
<p><em>P.S. Every new wave of arrests is meant to frighten people into staying at home. Adding
your name takes a minute and tells the authorities that the world has noticed.
<a href="{{ petition_url }}">Sign now</a>.</em></p>
""".strip(),
    "text_body": """
Dear {{ first_name|default:"friend" }},

Last Saturday, crowds filled the streets of Moscow and dozens of other Russian cities to
protest the jailing of opposition leader Aleksei Navalny. The police answered with force: more
than 1,300 people were detained in a single day.

Aleksei was seized at the airport on 17 January, the moment he returned from Germany, where
doctors had spent five months treating him after a Novichok poisoning last August.

He is being punished for peaceful activism and for saying what he thinks. We consider him a
prisoner of conscience, and we are asking people everywhere to say so too.

Will you sign the petition calling for his immediate and unconditional release, and for an end
to the persecution of everyone who criticises the Russian authorities?

Sign the petition: {{ petition_url }}

Our observers saw peaceful marchers beaten with batons. Days later, police searched the homes
and offices of opposition activists and journalists, Aleksei's among them. More protests are
planned for Sunday, and the world needs to be watching.

In solidarity,
Hilary
Crisis campaigner, Rally Demo

P.S. Every new wave of arrests is meant to frighten people into staying at home. Adding your
name takes a minute and tells the authorities that the world has noticed: {{ petition_url }}
""".strip(),
}

REFUSENIKS_CAMPAIGN = {
    "slug": "refuseniks",
    "name": "Free the refuseniks",
    "description": "Soldiers held in illegal prisons for refusing to fight, January 2023.",
}

REFUSENIKS_PETITION = {
    "slug": "otkazniki",
    "title": "Верните отказников домой из незаконных тюрем",
    "target": "Председателю Следственного комитета России",
    "goal": 10000,
    "language": "ru",
    "body": """
<p>На оккупированных территориях Луганской и Донецкой областей действуют незаконные места
заключения. Там держат российских военнослужащих, в том числе мобилизованных, которые
отказались дальше участвовать в войне.</p>
<p>Известно как минимум о 13 таких местах. По словам родственников, в них находятся не меньше
300 человек. Их не судили: командование просто не принимает их рапорты об отказе служить.</p>
<p>Задержанным угрожают расправой, не дают еды и медицинской помощи, чтобы заставить вернуться
на фронт. Между тем статьи 28 и 59 Конституции гарантируют право на свободу совести и на
альтернативную гражданскую службу.</p>
<p>Мы требуем проверить все сообщения о незаконном удержании военнослужащих, освободить их и
соблюдать их конституционное право на альтернативную службу.</p>
""".strip(),
    "consent_wording": "Сообщайте мне об этой и других кампаниях по электронной почте. "
    "Я могу отписаться в любой момент.",
}

FIRST_NAMES_EN = [
    "John", "Mary", "Aisha", "Tom", "Priya", "Lucas", "Emma", "Kwame", "Sofia", "Daniel",
    "Hannah", "Omar", "Grace", "Mateo", "Chloe", "Ben", "Ines", "Samuel", "Nora", "Ravi",
]  # fmt: skip
LAST_NAMES_EN = [
    "Smith", "Jones", "Okafor", "Garcia", "Chen", "Murphy", "Singh", "Novak", "Brown", "Khan",
    "Dubois", "Rossi", "Walker", "Larsen", "Ahmed", "Taylor", "Silva", "Evans", "Kowalski", "Ng",
]  # fmt: skip
FIRST_NAMES_RU = ["Анна", "Дмитрий", "Ольга", "Сергей", "Мария", "Алексей", "Екатерина", "Иван"]
LAST_NAMES_RU = ["Иванова", "Смирнов", "Кузнецова", "Попов", "Соколова", "Лебедев", "Козлова"]
COUNTRIES = ["GB", "CA", "US", "DE", "FR", "LT", "GE", "AM", "PL", "IE"]

DEMO_SEGMENT = {
    "name": "Volunteers yet to sign for the refuseniks",
    "description": "Our volunteers who have not added their name to the refuseniks petition: "
    "the first people to ask when it needs a push.",
}

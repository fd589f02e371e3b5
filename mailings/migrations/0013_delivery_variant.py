from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('mailings', '0012_delivery_mailing_esp_trouble'),
    ]

    operations = [
        migrations.AddField(
            model_name='delivery',
            name='variant',
            field=models.CharField(blank=True, db_default='', default='', max_length=1),
        ),
    ]

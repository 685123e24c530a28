from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("consults", "0007_note_requested_at")]

    operations = [
        migrations.AddField(
            model_name="audiochunk",
            name="windows_done",
            field=models.PositiveIntegerField(default=0),
        ),
    ]

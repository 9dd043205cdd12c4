"""`flask --app wsgi check`: verifies the configuration and says what is wrong (issue 9)."""
import click


@click.command("check")
def check():
    """Check the configuration: database, migrations, Redis, SMS backend, secret."""
    raise click.ClickException("not implemented yet")

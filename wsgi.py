from servicedesk import create_app

app = create_app()

from jobyard.cli.main import app

app()

"""The dashboard behind `fmkit ui`: a FastAPI back end (app.py) and a plain HTML/JS front end (static/)."""

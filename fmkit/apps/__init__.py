"""Applications built on fmkit's public pieces: a customer-service assistant (`support`), a financial
news sentiment monitor (`monitor`) and a text-based recommender (`recommend`).

They sit on top of the layers: they use `fmkit.inference` (Embedder, load_predictor) and the training
workflows, and nothing below imports them.
"""

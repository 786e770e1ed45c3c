"""Reading the models where they live, PostgreSQL or Spark (engine.py chooses, once per run):
the scoring inputs, the window counts, a dry run's scratch copies."""

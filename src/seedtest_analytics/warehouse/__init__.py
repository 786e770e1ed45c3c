"""Where the models live: PostgreSQL or Spark, chosen once per run."""

{{ optional_source('seedtest', 'ability_estimates', {
    'user_id': {'type': 'text', 'candidates': ['user_id']},
    'ability_mean': {'type': 'double precision', 'candidates': ['mean']},
    'ability_sd': {'type': 'double precision', 'candidates': ['sd']},
    'fitted_at': {'type': 'timestamptz', 'candidates': ['fitted_at', 'updated_at', 'created_at']},
}) }}

{{ optional_source('seedtest', 'mirt_ability', {
    'user_id': {'type': 'text', 'candidates': ['user_id']},
    'theta': {'type': 'double precision', 'candidates': ['theta']},
    'theta_se': {'type': 'double precision', 'candidates': ['se', 'standard_error']},
    'fitted_at': {'type': 'timestamptz', 'candidates': ['fitted_at', 'updated_at']},
    'model_version': {'type': 'text', 'candidates': ['version']},
}) }}

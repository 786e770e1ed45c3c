{{ optional_source('seedtest', 'student_topic_theta', {
    'user_id': {'type': 'text', 'candidates': ['user_id']},
    'topic_id': {'type': 'text', 'candidates': ['topic_id']},
    'theta': {'type': 'double precision', 'candidates': ['theta']},
    'theta_se': {'type': 'double precision', 'candidates': ['se', 'standard_error']},
    'estimated_at': {'type': 'timestamptz', 'candidates': ['updated_at', 'fitted_at']},
}) }}

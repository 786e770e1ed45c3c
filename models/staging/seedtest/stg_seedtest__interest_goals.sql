{{ optional_source('seedtest', 'interest_goal', {
    'user_id': {'type': 'text', 'candidates': ['user_id']},
    'topic_id': {'type': 'text', 'candidates': ['topic_id']},
    'target_level': {'type': 'double precision', 'candidates': ['target_level']},
    'priority': {'type': 'integer', 'candidates': ['priority']},
    'created_at': {'type': 'timestamptz', 'candidates': ['created_at']},
}) }}

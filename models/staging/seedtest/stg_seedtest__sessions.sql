{{ optional_source('seedtest', 'session', {
    'session_id': {'type': 'text', 'candidates': ['id']},
    'user_id': {'type': 'text', 'candidates': ['user_id']},
    'started_at': {'type': 'timestamptz', 'candidates': ['started_at']},
    'ended_at': {'type': 'timestamptz', 'candidates': ['ended_at']},
}) }}

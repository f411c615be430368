"""What operators run against items and deployments: approvals, replays, run previews and outcomes,
imports of other frameworks' configurations.
"""

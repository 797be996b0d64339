"""Scheduled jobs: the daily evaluation and the weekly account managers' report."""

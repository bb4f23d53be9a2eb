"""Linking clips to child-contact incidents, verdicts against policy, and the reports."""

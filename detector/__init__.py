"""Account linking, campaign clustering, models, scoring, rules, alerts and the CLI."""

"""The unattended store-box daemon (`edge-agent run`): see supervisor.py."""

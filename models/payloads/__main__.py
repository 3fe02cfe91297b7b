"""Rewrite docs/alert-payload.schema.json from the alert model, after a deliberate change of the contract."""

from .json_schema import write_alert_schema

if __name__ == "__main__":
    print(f"wrote {write_alert_schema()}")

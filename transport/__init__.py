"""What both sides use to talk over the network, apart from Flower: the one MQTT connection.

`models` stays pure (no network, no paho); `edge_agent` and `server` both import this
package and never each other.
"""

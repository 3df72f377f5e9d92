"""Outgoing webhooks (SPEC §10), Altur-compatible: `on_call_end`, `campaign.status_changed`, `campaign.cycle_completed`.

An event becomes one delivery row per subscribed endpoint in the transaction that makes the event (`hooks`), with the
exact body to send; the workers' delivery loop (`delivery`) claims due rows, POSTs them signed (`signing`) outside any
transaction, and records every attempt; `schedule` says what an attempt's outcome leads to.
"""

"""Test doubles that speak Herald's open contracts over real HTTP: a fake agent backend and a webhook sink."""

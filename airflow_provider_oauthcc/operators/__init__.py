"""Operators of the OAuth 2.0 client-credentials provider."""

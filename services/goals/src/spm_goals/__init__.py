"""The goals service."""

"""Local runner: broker, database, services and the demo on one machine."""

"""The component side: the client API, its heartbeats, and the ping and status commands."""

"""How loopml's records look on a terminal (rich) and as JSON; shared by the CLI and the UI."""

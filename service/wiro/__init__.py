"""Everything that speaks Wiro's HTTP API: signing, answer types, errors, the client and the emulator."""

"""What several test modules share: servers on loopback (:mod:`.servers`), hostile
targets (:mod:`.hostile`), and stopping child processes (:mod:`.procs`)."""

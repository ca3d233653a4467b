# /etc/cron.d/rrqnet: keep rrqnet cables up (see rrqctl(8), `rrqctl check`).
# Cables that systemd supervises (rrqnet@ units) are only reported, never raced.
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

* * * * * root /usr/bin/rrqctl check --quiet

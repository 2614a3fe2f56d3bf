"""Operations: broker lockdown, systemd notify/watchdog, installing a rig's services."""

/*
 * Telling the service manager how the daemon is: sd_notify(3) messages
 * (READY=1, STATUS=, RELOADING=1, STOPPING=1, WATCHDOG=1). Through
 * libsystemd when built with it, else one datagram to $NOTIFY_SOCKET;
 * nothing at all outside systemd. Main thread only.
 */
#ifndef UVMPAGERD_NOTIFY_H
#define UVMPAGERD_NOTIFY_H

#include <stdint.h>

void notify_send(const char *msg);
/* The watchdog period systemd asked for (WatchdogSec=), in ns; 0: none. */
uint64_t notify_watchdog_ns(void);

#endif

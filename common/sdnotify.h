/*
 * sdnotify.h - tell a service manager (systemd Type=notify) how we are:
 * one datagram to the unix socket named by $NOTIFY_SOCKET ("@name" is an
 * abstract socket). Without $NOTIFY_SOCKET nothing is sent.
 *
 * `doppel run` sends READY=1 once the service listens, `doppel proxy` once it
 * listens; both are started by deploy/systemd/ units with Type=notify.
 */
#ifndef DOPPEL_COMMON_SDNOTIFY_H
#define DOPPEL_COMMON_SDNOTIFY_H

/*
 * Send state ("READY=1", "STOPPING=1", ...). Returns 1 when it was sent, 0
 * when no service manager listens ($NOTIFY_SOCKET unset), -errno otherwise.
 */
int sdnotify(const char *state);

#endif

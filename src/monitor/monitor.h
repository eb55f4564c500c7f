/*
 * monitor — what the edge's numbers mean: process and host figures read
 * from /proc, alert rules and their states, notifications, and the watch
 * after a deploy that calls deploy's rollback. It reads the edge's counters
 * (through the edge's public API) and never blocks the request path: every
 * function here runs on a monitor thread or in a command, not in a worker.
 *
 * Sections below belong to one source file each; the file's comment says
 * who owns what it returns.
 */
#ifndef SW_MONITOR_H
#define SW_MONITOR_H

#include "base/base.h"

/* Codes of this module (beside the SW_E* ones): -400 .. -499. */

/* ---- process and host figures (proc.c) ---------------------------------------- */

/* ---- alert rules (rules.c) ---------------------------------------------------- */

#endif

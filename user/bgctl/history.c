// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * bgctl's changes go through the library's audit history (bgs_history_*): it writes the
 * intent under the pin directory's lock before the change and the outcome after, as for
 * every other front end. This file opens the history and reports what cannot be recorded.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bgctl.h"

/* The history, opened once per run; an emergency change goes on without one. */
static int history_attach(void)
{
	char why[sizeof(g.err)];
	int err;

	if (g.hist)
		return 0;
	err = bgs_history_open(g.history_file, "bgctl", &g.hist);
	if (!err) {
		bgs_set_history(g.h, g.hist);
		return 0;
	}
	if (g.emergency) {
		fprintf(stderr, "bgctl: WARNING: %s; applying anyway (an emergency change does "
			"not wait for the audit history), but it is NOT RECORDED\n", bgs_errmsg());
		return 0;
	}
	lib_fail(err, "open history");
	snprintf(why, sizeof(why), "%s", g.err); /* fail() writes g.err: not from itself */
	return fail(err, err == -EACCES || err == -EPERM || err == -EROFS ? EXIT_KERNEL : EXIT_OTHER,
		    "%s; nothing was changed (set --history-file or BGSWITCH_HISTORY to a "
		    "writable file)", why);
}

int run_change(const char *verb, const char *service, json_object *intent,
	       int (*apply)(void *arg, json_object *done), void *arg)
{
	struct bgs_change_info ci = {
		.verb = verb,
		.service = service,
		.svc_id = BGS_ALL_SERVICES,
		.details_json = intent ? json_object_to_json_string(intent) : NULL,
		.flags = g.emergency ? BGS_CHANGE_EMERGENCY : 0,
	};
	json_object *done = json_object_new_object();
	bool noted = g.h != NULL;
	int err, lost = 0;

	/* init and attach make the handle themselves: their record is written after. */
	err = noted ? history_attach() : 0;
	if (!err && noted)
		err = bgs_change_note(g.h, &ci);
	if (err) {
		if (!g.err[0])
			lib_fail(err, "note the change");
		goto out;
	}
	g.err[0] = '\0';
	err = apply(arg, done);
	if (!noted && g.h && !history_attach())
		bgs_change_note(g.h, &ci);
	if (g.h)
		lost = bgs_change_finish(g.h, err, err < 0 && g.err[0] ? g.err : NULL);
	if (lost)
		fprintf(stderr, "bgctl: WARNING: the change was applied, but its history record "
			"could not be written to %s (%s): it is NOT RECORDED\n", g.history_file,
			strerror(-lost));
out:
	json_object_put(done);
	return err;
}

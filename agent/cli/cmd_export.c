/* cmd_export.c — `goscope export`: the agent's stored profiles back out, merged into one
 * pprof for `go tool pprof`, or listed. It opens the store read-only beside a running agent
 * (SQLite's WAL lets a reader run beside the writer). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/json.h"
#include "cli/text.h"
#include "profile/profile.h"
#include "profile/sink.h"
#include "store/query_time.h"
#include "store/store.h"

#define DEFAULT_DATA_DIR "/var/lib/goscope"
#define MAX_LABELS 16

void usage_export(FILE *out)
{
	fprintf(out,
		"usage: goscope export [--data-dir DIR] [--service NAME] [--type cpu|block|heap]\n"
		"                      [--pid PID] [--from T] [--to T] [--label KEY=VALUE]...\n"
		"                      (-o FILE | --list [--json])\n\n"
		"Merge the stored profiles that match into one gzip pprof (samples with the same\n"
		"stack and labels summed), or list them. T: RFC 3339 (2026-12-01T10:00:00Z), Unix\n"
		"seconds, relative (-15m, -1h) or now. Default: the last hour of every service.\n\n"
		"  --data-dir DIR        the agent's data directory (default " DEFAULT_DATA_DIR
		"; env GOSCOPE_DATA_DIR)\n"
		"  --service NAME        only this service_name\n"
		"  --type TYPE           cpu, block or heap (default cpu when merging)\n"
		"  --pid PID             only this process id\n"
		"  --from T, --to T      time range (default -1h to now)\n"
		"  --label KEY=VALUE     only profiles with this label (repeatable)\n"
		"  -o, --output FILE     write the merged profile here ('-' = stdout)\n"
		"  --list                list the matching profiles instead\n"
		"  --json                the listing as JSON lines\n"
		"  -h, --help            show this help\n");
}

struct list_ctx {
	bool json;
	size_t n;
};

static void fmt_time(int64_t ns, char *out, size_t len)
{
	time_t t = (time_t)(ns / 1000000000LL);
	struct tm tm;

	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

static int list_row(void *arg, const struct store_row_info *r)
{
	struct list_ctx *c = arg;
	char from[32], to[32];

	fmt_time(r->start_ns, from, sizeof(from));
	fmt_time(r->end_ns, to, sizeof(to));
	if (c->json) {
		printf("{\"id\":%lld,\"type\":", (long long)r->id);
		json_string(stdout, r->type);
		printf(",\"service\":");
		json_string(stdout, r->service);
		printf(",\"pid\":%d,\"start_ticks\":%llu,\"start\":\"%s\",\"end\":\"%s\","
		       "\"start_ns\":%lld,\"end_ns\":%lld,\"bytes\":%zu,\"rolled_up\":%s,"
		       "\"labels\":%s}\n",
		       r->pid, (unsigned long long)r->start_ticks, from, to, (long long)r->start_ns,
		       (long long)r->end_ns, r->bytes, r->rolled_up ? "true" : "false",
		       r->labels_json ? r->labels_json : "{}");
	} else {
		if (!c->n)
			printf("%-8s %-6s %-24s %-8s %-20s %-20s %8s %s\n", "ID", "TYPE", "SERVICE",
			       "PID", "START", "END", "BYTES", "ROLLUP");
		printf("%-8lld %-6s %-24s %-8d %-20s %-20s %8zu %s\n", (long long)r->id,
		       text_safe(r->type), text_safe(r->service), r->pid, from, to, r->bytes,
		       r->rolled_up ? "minute" : "-");
	}
	c->n++;
	return 0;
}

int cmd_export(int argc, char **argv)
{
	enum { O_DIR = 256, O_SERVICE, O_TYPE, O_PID, O_FROM, O_TO, O_LABEL, O_LIST, O_JSON };
	static const struct option opts[] = {
		{"data-dir", required_argument, NULL, O_DIR},
		{"service", required_argument, NULL, O_SERVICE},
		{"type", required_argument, NULL, O_TYPE},
		{"pid", required_argument, NULL, O_PID},
		{"from", required_argument, NULL, O_FROM},
		{"to", required_argument, NULL, O_TO},
		{"label", required_argument, NULL, O_LABEL},
		{"list", no_argument, NULL, O_LIST},
		{"json", no_argument, NULL, O_JSON},
		{"output", required_argument, NULL, 'o'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct timespec now_ts;
	struct store_label labels[MAX_LABELS];
	char *label_copies[MAX_LABELS] = {0};
	struct store_query q = {0};
	struct store_config sc = {.read_only = true};
	struct store *st = NULL;
	struct profile *prof = NULL;
	struct file_sink *sink = NULL;
	struct gs_error err = {0};
	const char *from = "-1h", *to = "now", *output = NULL;
	bool list = false, json = false;
	int64_t now;
	int c, pid, rc = 1;

	sc.dir = getenv("GOSCOPE_DATA_DIR");
	if (!sc.dir || !*sc.dir)
		sc.dir = DEFAULT_DATA_DIR;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+o:h", opts, NULL)) != -1) {
		switch (c) {
		case O_DIR:
			sc.dir = optarg;
			break;
		case O_SERVICE:
			q.service = optarg;
			break;
		case O_TYPE:
			q.type = optarg;
			break;
		case O_PID:
			if (!cli_parse_pid(optarg, &pid)) {
				cli_error("export", "bad pid '%s'", optarg);
				goto usage;
			}
			q.pid = pid;
			break;
		case O_FROM:
			from = optarg;
			break;
		case O_TO:
			to = optarg;
			break;
		case O_LABEL: {
			char *eq, *copy;

			if (q.nmatch == MAX_LABELS || !(eq = strchr(optarg, '=')) || eq == optarg) {
				cli_error("export", "bad --label '%s' (KEY=VALUE, at most %d)",
					  optarg, MAX_LABELS);
				goto usage;
			}
			copy = strdup(optarg);
			if (!copy)
				goto out;
			copy[eq - optarg] = '\0';
			label_copies[q.nmatch] = copy;
			labels[q.nmatch++] = (struct store_label){copy, copy + (eq - optarg) + 1};
			break;
		}
		case O_LIST:
			list = true;
			break;
		case O_JSON:
			json = true;
			break;
		case 'o':
			output = optarg;
			break;
		case 'h':
			usage_export(stdout);
			rc = 0;
			goto out;
		default:
			cli_error("export", "unknown option '%s'", argv[optind - 1]);
			goto usage;
		}
	}
	if (optind < argc) {
		cli_error("export", "unexpected argument '%s'", argv[optind]);
		goto usage;
	}
	if (list == !!output) {
		cli_error("export", "give either -o FILE or --list");
		goto usage;
	}
	clock_gettime(CLOCK_REALTIME, &now_ts);
	now = (int64_t)now_ts.tv_sec * 1000000000LL + now_ts.tv_nsec;
	if (query_time_parse(from, now, &q.from_ns, &err) < 0 ||
	    query_time_parse(to, now, &q.to_ns, &err) < 0) {
		cli_error("export", "%s", err.msg);
		goto usage;
	}
	q.match = labels;
	if (!list && !q.type)
		q.type = "cpu";
	if (store_open(&sc, &st, &err) < 0) {
		cli_error("export", "%s", err.msg);
		goto out;
	}
	if (list) {
		struct list_ctx lc = {.json = json};

		if (store_list(st, &q, list_row, &lc, &err) < 0) {
			cli_error("export", "%s", err.msg);
			goto out;
		}
		rc = 0;
		goto out;
	}
	if (file_sink_open(output, &sink, &err) < 0) {
		cli_error("export", "%s", err.msg);
		goto out;
	}
	rc = store_merge(st, &q, &prof, &err);
	if (rc < 0) {
		cli_error("export", "%s", rc == -ENOENT ? "no stored profile matches" : err.msg);
		rc = 1;
		goto out;
	}
	rc = profile_file_commit(sink, prof, &err);
	sink = NULL;
	if (rc < 0) {
		cli_error("export", "%s", err.msg);
		rc = 1;
		goto out;
	}
	rc = 0;
out:
	if (sink)
		file_sink_abort(sink);
	profile_free(prof);
	store_close(st);
	for (size_t i = 0; i < MAX_LABELS; i++)
		free(label_copies[i]);
	return rc;
usage:
	rc = cli_usage_error(usage_export);
	goto out;
}

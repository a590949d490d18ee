/* cmd_version.c — `goscope version`: versions, and whether this host can run goscope
 * (BTF, capabilities). */
#include <bpf/libbpf.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "cli/cli.h"

/* Capability numbers from linux/capability.h (CAP_PERFMON and CAP_BPF are 5.8+). */
#define CAP_NUM_SYS_PTRACE 19
#define CAP_NUM_SYS_ADMIN 21
#define CAP_NUM_SYS_RESOURCE 24
#define CAP_NUM_PERFMON 38
#define CAP_NUM_BPF 39

void usage_version(FILE *out)
{
	fprintf(out, "usage: goscope version\n\n"
		     "Print goscope's and libbpf's versions, the kernel release, whether kernel BTF\n"
		     "is present and which of the needed capabilities goscope has.\n");
}

static uint64_t effective_caps(void)
{
	char line[256];
	uint64_t caps = 0;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "CapEff:", 7) == 0) {
			caps = strtoull(line + 7, NULL, 16);
			break;
		}
	}
	fclose(f);
	return caps;
}

int cmd_version(int argc, char **argv)
{
	static const struct {
		const char *name;
		int bit;
	} needed[] = {
		{"CAP_BPF", CAP_NUM_BPF},
		{"CAP_PERFMON", CAP_NUM_PERFMON},
		{"CAP_SYS_PTRACE", CAP_NUM_SYS_PTRACE},
		{"CAP_SYS_RESOURCE", CAP_NUM_SYS_RESOURCE},
	};
	struct utsname un;
	uint64_t caps;
	bool btf, all = true;

	if (argc > 1) {
		if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
			usage_version(stdout);
			return 0;
		}
		cli_error("version", "unexpected argument '%s'", argv[1]);
		return cli_usage_error(usage_version);
	}
	caps = effective_caps();
	btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0;
	printf("goscope %s\n", GOSCOPE_VERSION);
	printf("libbpf %s\n", libbpf_version_string());
	if (uname(&un) == 0)
		printf("kernel %s %s\n", un.release, un.machine);
	printf("btf %s\n", btf ? "yes (/sys/kernel/btf/vmlinux)" : "no");
	printf("capabilities");
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		bool have = caps & (1ULL << needed[i].bit);

		/* CAP_SYS_ADMIN covers CAP_BPF and CAP_PERFMON on every kernel. */
		if (!have && (needed[i].bit == CAP_NUM_BPF || needed[i].bit == CAP_NUM_PERFMON))
			have = caps & (1ULL << CAP_NUM_SYS_ADMIN);
		printf(" %s=%s", needed[i].name, have ? "yes" : "no");
		all &= have;
	}
	printf("\nready %s\n", btf && all ? "yes" : "no");
	return 0;
}

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
#include "procs/proc.h"

void usage_version(FILE *out)
{
	fprintf(out,
		"usage: goscope version\n\n"
		"Print goscope's and libbpf's versions, the kernel release, whether kernel BTF\n"
		"is present and which of the needed capabilities goscope has.\n");
}

int cmd_version(int argc, char **argv)
{
	static const struct {
		const char *name;
		int bit;
	} needed[] = {
		{"CAP_BPF", PROC_CAP_BPF},
		{"CAP_PERFMON", PROC_CAP_PERFMON},
		{"CAP_SYS_PTRACE", PROC_CAP_SYS_PTRACE},
		{"CAP_SYS_RESOURCE", PROC_CAP_SYS_RESOURCE},
	};
	struct proc_self_status st;
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
	caps = proc_self_status(&st) == 0 ? st.cap_eff : 0;
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
		if (!have && (needed[i].bit == PROC_CAP_BPF || needed[i].bit == PROC_CAP_PERFMON))
			have = caps & (1ULL << PROC_CAP_SYS_ADMIN);
		printf(" %s=%s", needed[i].name, have ? "yes" : "no");
		all &= have;
	}
	printf("\nready %s\n", btf && all ? "yes" : "no");
	return 0;
}

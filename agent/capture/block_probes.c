/* block_probes.c — probe placement from the prologue: finds runtime.gopark/ready/netpollready/
 * injectglist of the target through its pclntab (stripped binaries work), reads the Go
 * version and its per-version facts, and places each probe on the function's stack-check
 * branch (block_probe_offset says why). Nothing here touches the kernel. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture/block_impl.h"
#include "goscope/symbolizer.h"

#define PROLOGUE_BYTES 32

/* amd64 split-stack prologue encodings (cmd/internal/obj/x86/obj6.go stacksplit). */
static const uint8_t CMP_RSP_G_GUARD[] = {0x49, 0x3b, 0x66, 0x10}; /* cmp 0x10(%r14),%rsp */
static const uint8_t CMP_R12_G_GUARD[] = {0x4d, 0x3b, 0x66, 0x10}; /* cmp 0x10(%r14),%r12 */
#define LEA_R12_RSP_DISP8_LEN 5	 /* 4c 8d 64 24 d8: lea -N(%rsp),%r12 */
#define LEA_R12_RSP_DISP32_LEN 8 /* 4c 8d a4 24 d32 */
#define JBE_REL8 0x76
#define JBE_REL8_LEN 2
#define JCC_REL32_PREFIX 0x0f
#define JBE_REL32 0x86
#define JBE_REL32_LEN 6

const char *const block_probe_funcs[BLOCK_NPROBES] = {
	"runtime.gopark", "runtime.ready", "runtime.netpollready", "runtime.injectglist"};

int block_probe_offset(const uint8_t *code, size_t len)
{
	size_t off = 0;

	if (len >= sizeof(CMP_RSP_G_GUARD) &&
	    memcmp(code, CMP_RSP_G_GUARD, sizeof(CMP_RSP_G_GUARD)) == 0) {
		off = sizeof(CMP_RSP_G_GUARD);
	} else if (len >= 3 && code[0] == 0x4c && code[1] == 0x8d &&
		   (code[2] == 0x64 || code[2] == 0xa4) && len > 3 && code[3] == 0x24) {
		off = code[2] == 0x64 ? LEA_R12_RSP_DISP8_LEN : LEA_R12_RSP_DISP32_LEN;
		if (len < off + sizeof(CMP_R12_G_GUARD) ||
		    memcmp(code + off, CMP_R12_G_GUARD, sizeof(CMP_R12_G_GUARD)) != 0)
			return -ENOENT;
		off += sizeof(CMP_R12_G_GUARD);
	} else {
		return -ENOENT;
	}
	if (len >= off + JBE_REL32_LEN && code[off] == JCC_REL32_PREFIX &&
	    code[off + 1] == JBE_REL32)
		return (int)off;
	if (len >= off + JBE_REL8_LEN && code[off] == JBE_REL8)
		return (int)off;
	return -ENOENT;
}

/* Finds each probed function and the file offset of its probe point. */
static int find_probes(struct block_session *s, struct gs_binary *bin)
{
	for (int k = 0; k < BLOCK_NPROBES; k++) {
		uint8_t code[PROLOGUE_BYTES];
		uint64_t entry, end, off;
		int po;

		if (gs_binary_find_function(bin, block_probe_funcs[k], &entry, &end) < 0)
			return gs_error_set(
				s->err, -ENOENT,
				"%s not found in the pclntab of process %d's executable",
				block_probe_funcs[k], s->cfg.pid);
		if (end - entry < sizeof(code) ||
		    gs_binary_read(bin, entry, code, sizeof(code)) < 0)
			return gs_error_set(s->err, -ENOENT, "cannot read the code of %s",
					    block_probe_funcs[k]);
		/* On the stack-check branch: see block_probe_offset. An unknown prologue, or a
		 * nosplit function (netpollready), is probed at its entry; a morestack restart
		 * there fires the probe twice, which only replaces gopark's own pending record
		 * and finds nothing left to count in ready. */
		po = block_probe_offset(code, sizeof(code));
		s->on_branch[k] = po >= 0;
		if (po < 0)
			po = 0;
		if (gs_binary_addr_to_offset(bin, entry + (uint64_t)po, &off) < 0)
			return gs_error_set(s->err, -ENOENT, "no file offset for %s",
					    block_probe_funcs[k]);
		s->offsets[k] = off;
		s->vaddrs[k] = entry + (uint64_t)po;
	}
	return 0;
}

/* The probe points' addresses in the target: the executable's mapping (matched by inode)
 * that holds each file offset; the link-time address where none is found (a non-PIE Go
 * binary is loaded at its link-time addresses anyway). */
void block_probe_addrs(struct block_session *s)
{
	unsigned long long start, end, off, ino;
	char path[64], line[512], perms[8];
	FILE *f;

	for (int k = 0; k < BLOCK_NPROBES; k++)
		s->addrs[k] = s->vaddrs[k];
	snprintf(path, sizeof(path), "/proc/%d/maps", s->cfg.pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%llx-%llx %7s %llx %*s %llu", &start, &end, perms, &off, &ino) !=
			    5 ||
		    ino != s->exe_ino || perms[2] != 'x')
			continue;
		for (int k = 0; k < BLOCK_NPROBES; k++)
			if (s->offsets[k] >= off && s->offsets[k] - off < end - start)
				s->addrs[k] = start + (s->offsets[k] - off);
	}
	fclose(f);
}

/* Opens the target's executable (held open: see exe_fd in block_impl.h): a Go program with
 * build info, of a supported version; fills the version facts and the probe points. */
int block_open_target(struct block_session *s)
{
	const struct gs_binary_info *info;
	struct gs_binary *bin;
	struct stat st;
	char path[64];
	int rc;

	snprintf(path, sizeof(path), "/proc/%d/exe", s->cfg.pid);
	s->exe_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (s->exe_fd < 0 || fstat(s->exe_fd, &st) < 0)
		return gs_error_set(s->err, -errno, "open %s: %s", path, strerror(errno));
	s->exe_dev = st.st_dev;
	s->exe_ino = st.st_ino;
	snprintf(s->exe, sizeof(s->exe), "/proc/%d/fd/%d", getpid(), s->exe_fd);
	rc = gs_binary_open(s->exe, &bin, s->err);
	if (rc < 0)
		return rc;
	info = gs_binary_info(bin);
	if (!info->is_go) {
		rc = gs_error_set(s->err, -ENOEXEC, "process %d is not a Go program", s->cfg.pid);
	} else if (!info->has_buildinfo) {
		rc = gs_error_set(s->err, -ENOEXEC,
				  "process %d: no Go build info, cannot tell the Go version",
				  s->cfg.pid);
	} else {
		snprintf(s->info.go_version, sizeof(s->info.go_version), "%s",
			 info->buildinfo.go_version);
		rc = goversion_lookup(info->buildinfo.go_version, &s->facts, s->err);
		if (rc == -EPROTONOSUPPORT)
			gs_error_prefix(s->err, "process %d", s->cfg.pid);
		if (rc == 0)
			rc = find_probes(s, bin);
	}
	gs_binary_close(bin);
	s->info.table_measured = s->facts.measured;
	return rc;
}

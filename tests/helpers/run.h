/* run.h — running commands from integration tests: the goscope binary under test, Go tools. */
#ifndef GOSCOPE_TESTS_RUN_H
#define GOSCOPE_TESTS_RUN_H

#include <stddef.h>
#include <sys/types.h>

/* Runs `sh -c cmd`, collects stdout (stderr too when merge_stderr) into a malloc'd,
 * NUL-terminated buffer, and returns the exit code (or -1 when it could not run / died by a
 * signal: 128+signo). */
int run_capture(const char *cmd, int merge_stderr, char **out, size_t *len);
/* Path of the goscope binary under test (env GOSCOPE_BIN or build/goscope). */
const char *goscope_bin(void);
/* Path of a toolchain's go command, or NULL when it is not installed. */
const char *go_tool_path(const char *toolchain, char *buf, size_t len);
/* Open fds of process pid (0: this process) whose link target starts with prefix, e.g.
 * "anon_inode:bpf_link"; -1 when the process's fds cannot be listed. */
int fd_count(pid_t pid, const char *prefix);
/* The ids of the BPF programs process pid holds through its program and link fds (the
 * prog_id lines of /proc/PID/fdinfo), each once: at most max stored, the number found
 * returned (-1 when the fds cannot be listed). Tests check that *these* programs are gone
 * after a kill, not that no such program is loaded anywhere (other captures may run). */
int held_prog_ids(pid_t pid, unsigned int *ids, int max);
/* Whether the BPF program with this id is still loaded (somewhere on the host). */
int prog_id_loaded(unsigned int id);
/* fork + execv(argv[0], argv): the child's pid, -1 when fork failed (127 is the child's exit
 * code when the exec failed). */
pid_t spawn_argv(char *const argv[]);
/* Waits for pid: its exit code, 128 + the signal that ended it, -1 when waitpid failed. */
int wait_exit_code(pid_t pid);
/* Makes a fresh temporary directory and returns its path (static storage per call). */
char *test_tmpdir(char *buf, size_t len);

#endif

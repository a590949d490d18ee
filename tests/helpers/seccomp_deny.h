/* seccomp_deny.h — installs a seccomp filter in the calling process that fails one syscall
 * with EPERM, as a container runtime's default profile does for bpf(): lets tests check what
 * goscope says when it runs under such a profile. */
#ifndef GOSCOPE_TESTS_SECCOMP_DENY_H
#define GOSCOPE_TESTS_SECCOMP_DENY_H

/* 0, or -errno. The filter stays for the life of the process and its children. */
int seccomp_deny_syscall(long nr);

#endif

/* mapguard.h — keeps a file that shrinks under one of the symbolizer's read-only mappings
 * from killing goscope with SIGBUS.
 *
 * Every file goscope maps belongs to someone else (a profiled program, its shared objects),
 * and any user can truncate their own file while root goscope reads it: reading a mapped page
 * past the new end of the file raises SIGBUS. Each mapping is registered here; a SIGBUS
 * handler (installed once, chaining to the previous one for any other fault) maps zero pages
 * over the rest of the faulting mapping so the read completes, and marks the mapping
 * "changed". Readers check the mark after reading and report an error rather than results
 * computed from zeroes. */
#ifndef GOSCOPE_SYMBOLIZER_MAPGUARD_H
#define GOSCOPE_SYMBOLIZER_MAPGUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Mappings guarded at once: binaries in use by every profiled process plus the cache. */
#define GS_MAPGUARD_SLOTS 4096

/* Registers [addr, addr+len) (a whole mapping, page aligned) and installs the handler on
 * first use. Returns a handle (> 0), -ENOSPC when the table is full, or -errno when the
 * handler cannot be installed. */
int gs_mapguard_add(const void *addr, size_t len);
/* Unregisters a handle; call before unmapping (the address range may be reused after). */
void gs_mapguard_remove(int handle);
/* Whether a fault was repaired in the mapping since it was registered. */
bool gs_mapguard_changed(int handle);

#endif

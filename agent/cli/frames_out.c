/* frames_out.c — the output formats shared by `addr2line` and `symbolize`. */
#include "cli/frames_out.h"
#include "cli/text.h"
#include "cli/json.h"

void frames_print(FILE *out, enum frames_style style, unsigned long long addr,
		  const struct gs_frame *frames, int n, const struct gs_location *loc)
{
	if (style == FRAMES_JSON) {
		fprintf(out, "{\"address\": \"0x%llx\"", addr);
		if (loc && loc->mapping) {
			fprintf(out, ", \"mapping\": ");
			json_string(out, loc->mapping->path);
			fprintf(out, ", \"offset\": \"0x%llx\"",
				(unsigned long long)loc->map_offset);
		}
		fprintf(out, ", \"frames\": [");
		for (int i = 0; i < n; i++) {
			fprintf(out, "%s{\"function\": ", i ? ", " : "");
			json_string(out, frames[i].function);
			fprintf(out, ", \"raw_function\": ");
			json_string(out, frames[i].raw_function);
			fprintf(out, ", \"file\": ");
			json_string(out, frames[i].file);
			fprintf(out, ", \"line\": %d, \"start_line\": %d, \"inlined\": %s}",
				frames[i].line, frames[i].start_line,
				frames[i].inlined ? "true" : "false");
		}
		fprintf(out, "]}\n");
		return;
	}
	if (n <= 0) {
		fprintf(out, "?\n?:0\n");
		return;
	}
	if (style == FRAMES_GO_ADDR2LINE) {
		/* go tool addr2line prints the stored (raw) name of the real function. */
		const struct gs_frame *f = &frames[n - 1];

		if (f->go)
			fprintf(out, "%s\n%s:%d\n", text_safe(f->raw_function),
				text_safe(f->raw_file), f->raw_line);
		else
			fprintf(out, "%s\n%s:%d\n", text_safe(f->raw_function), text_safe(f->file),
				f->line);
		return;
	}
	for (int i = 0; i < n; i++)
		fprintf(out, "%s\n%s:%d\n", text_safe(frames[i].function),
			text_safe(frames[i].file), frames[i].line);
}

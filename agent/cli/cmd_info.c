/* cmd_info.c — `goscope info BINARY`: what goscope knows about a binary. */
#include <elf.h>
#include <getopt.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/text.h"
#include "goscope/symbolizer.h"
#include "cli/json.h"

void usage_info(FILE *out)
{
	fprintf(out, "usage: goscope info [--json] BINARY\n\n"
		     "Describe a binary: Go version, main module, build IDs, pclntab format and\n"
		     "location, function count, text range, stripped / PIE / internal or external\n"
		     "linking.\n\n"
		     "  --json      one JSON object\n"
		     "  -h, --help  show this help\n");
}

static const char *yes_no(bool b)
{
	return b ? "yes" : "no";
}

static void print_text(const char *path, const struct gs_binary_info *in)
{
	const struct gs_buildinfo *bi = &in->buildinfo;

	printf("file:            %s\n", text_safe(path));
	printf("go:              %s\n", in->is_go ? "yes" : "no");
	printf("go version:      %s\n", text_safe(in->has_buildinfo ? bi->go_version : "-"));
	printf("path:            %s\n", text_safe(in->has_buildinfo && *bi->path ? bi->path : "-"));
	printf("module:          %s %s\n", text_safe(*bi->mod_path ? bi->mod_path : "-"),
	       text_safe(bi->mod_version));
	printf("go build id:     %s\n", text_safe(*in->go_build_id ? in->go_build_id : "-"));
	printf("gnu build id:    %s\n", text_safe(*in->gnu_build_id ? in->gnu_build_id : "-"));
	printf("pclntab:         %s", gs_pclntab_format_name(in->pclntab_format));
	if (in->pclntab_format != GS_PCLNTAB_NONE)
		printf(" at 0x%llx, %llu bytes, found by %s", (unsigned long long)in->pclntab_addr,
		       (unsigned long long)in->pclntab_size, in->pclntab_found_by);
	printf("\nfunctions:       %llu\n", (unsigned long long)in->nfunc);
	if (in->pclntab_format != GS_PCLNTAB_NONE)
		printf("text:            0x%llx-0x%llx (from %s)\n",
		       (unsigned long long)in->text_start, (unsigned long long)in->text_end,
		       in->text_found_by);
	printf("stripped:        %s\n", yes_no(in->stripped));
	printf("section headers: %s\n", yes_no(in->has_section_headers));
	printf("pie:             %s\n", yes_no(in->pie));
	printf("linking:         %s\n", in->external_link ? "external" : "internal");
}

static void print_json(const char *path, const struct gs_binary_info *in)
{
	const struct gs_buildinfo *bi = &in->buildinfo;

	printf("{\"file\": ");
	json_string(stdout, path);
	printf(", \"go\": %s, \"go_version\": ", in->is_go ? "true" : "false");
	json_string(stdout, in->has_buildinfo ? bi->go_version : "");
	printf(", \"path\": ");
	json_string(stdout, bi->path);
	printf(", \"module\": ");
	json_string(stdout, bi->mod_path);
	printf(", \"module_version\": ");
	json_string(stdout, bi->mod_version);
	printf(", \"go_build_id\": ");
	json_string(stdout, in->go_build_id);
	printf(", \"gnu_build_id\": ");
	json_string(stdout, in->gnu_build_id);
	printf(", \"pclntab_format\": ");
	json_string(stdout, gs_pclntab_format_name(in->pclntab_format));
	printf(", \"pclntab_magic\": \"0x%08x\", \"pclntab_addr\": \"0x%llx\", "
	       "\"functions\": %llu, \"text_start\": \"0x%llx\", \"text_end\": \"0x%llx\", "
	       "\"stripped\": %s, \"section_headers\": %s, \"pie\": %s, \"linking\": \"%s\"}\n",
	       in->pclntab_magic, (unsigned long long)in->pclntab_addr,
	       (unsigned long long)in->nfunc, (unsigned long long)in->text_start,
	       (unsigned long long)in->text_end, in->stripped ? "true" : "false",
	       in->has_section_headers ? "true" : "false", in->pie ? "true" : "false",
	       in->external_link ? "external" : "internal");
}

int cmd_info(int argc, char **argv)
{
	struct gs_error err = {0};
	struct gs_binary *bin;
	bool json;
	int rc;

	rc = cli_json_opts("info", usage_info, argc, argv, &json);
	if (rc >= 0)
		return rc;
	if (argc - optind != 1) {
		cli_error("info", "expected exactly one BINARY");
		return cli_usage_error(usage_info);
	}
	if (gs_binary_open(argv[optind], &bin, &err) < 0) {
		cli_error("info", "%s", err.msg);
		return 1;
	}
	if (json)
		print_json(argv[optind], gs_binary_info(bin));
	else
		print_text(argv[optind], gs_binary_info(bin));
	gs_binary_close(bin);
	return 0;
}

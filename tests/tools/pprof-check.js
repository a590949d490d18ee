#!/usr/bin/env node
// pprof-check.js — decodes a pprof file with an independent decoder (the npm package
// pprof-format, not our C code), checks that its references hold together, and prints a JSON
// summary that the unit tests (tests/unit/test_pprof.c) compare with what they wrote.
//
//   node tests/tools/pprof-check.js FILE      FILE: gzip-compressed or plain profile.proto
//
// Exit status: 0 valid, 1 decoded but inconsistent (the summary lists "errors"), 2 unreadable.
'use strict';

const fs = require('fs');
const zlib = require('zlib');
const { Profile } = require('pprof-format');

// pprof-format returns small varints as numbers and larger ones as unsigned BigInts; int64
// fields are two's complement, so go through BigInt.asIntN to get their sign back.
function int64(x) {
	return BigInt.asIntN(64, BigInt(x || 0));
}

function uint64(x) {
	return BigInt.asUintN(64, BigInt(x || 0));
}

// JSON has no BigInt: exact numbers when safe, decimal strings otherwise.
function jsonNumber(b) {
	return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER)
		? Number(b)
		: b.toString();
}

function main(argv) {
	if (argv.length !== 1) {
		process.stderr.write('usage: pprof-check.js FILE\n');
		return 2;
	}
	let data;
	try {
		data = fs.readFileSync(argv[0]);
		if (data.length >= 2 && data[0] === 0x1f && data[1] === 0x8b) {
			data = zlib.gunzipSync(data);
		}
	} catch (e) {
		process.stderr.write(`pprof-check: ${argv[0]}: ${e.message}\n`);
		return 2;
	}

	let prof;
	try {
		prof = Profile.decode(data);
	} catch (e) {
		process.stderr.write(`pprof-check: ${argv[0]}: not a profile: ${e.message}\n`);
		return 2;
	}

	const errors = [];
	const strings = prof.stringTable.strings;
	const str = (idx, what) => {
		const i = Number(idx || 0);
		if (i < 0 || i >= strings.length) {
			errors.push(`${what}: string index ${i} out of range (${strings.length} strings)`);
			return '';
		}
		return strings[i];
	};
	if (strings.length === 0 || strings[0] !== '') {
		errors.push('string_table[0] is not ""');
	}
	const seen = new Set();
	for (const s of strings) {
		if (seen.has(s)) errors.push(`duplicate string ${JSON.stringify(s)}`);
		seen.add(s);
	}

	const valueType = (vt, what) => ({ type: str(vt.type, what), unit: str(vt.unit, what) });
	const sampleTypes = prof.sampleType.map((vt) => valueType(vt, 'sample_type'));

	// Ids must be unique and non-zero; ours are also dense (1..n), as Go writes them.
	const ids = (list, what) => {
		const m = new Map();
		list.forEach((x, i) => {
			const id = Number(x.id);
			if (id === 0) errors.push(`${what} ${i}: id 0`);
			if (m.has(id)) errors.push(`${what}: duplicate id ${id}`);
			m.set(id, x);
		});
		return m;
	};
	const mappings = ids(prof.mapping, 'mapping');
	const functions = ids(prof.function, 'function');
	const locations = ids(prof.location, 'location');

	for (const m of prof.mapping) {
		str(m.filename, 'mapping filename');
		str(m.buildId, 'mapping build_id');
		if (uint64(m.memoryLimit) < uint64(m.memoryStart)) {
			errors.push(`mapping ${m.id}: limit below start`);
		}
	}
	for (const f of prof.function) {
		str(f.name, 'function name');
		str(f.systemName, 'function system_name');
		str(f.filename, 'function filename');
	}
	let lines = 0;
	let inlined = 0;
	for (const loc of prof.location) {
		const mid = Number(loc.mappingId || 0);
		if (mid !== 0 && !mappings.has(mid)) {
			errors.push(`location ${loc.id}: unknown mapping ${mid}`);
		}
		for (const ln of loc.line) {
			if (!functions.has(Number(ln.functionId))) {
				errors.push(`location ${loc.id}: unknown function ${ln.functionId}`);
			}
		}
		lines += loc.line.length;
		if (loc.line.length > 1) inlined++;
	}

	const totals = sampleTypes.map(() => 0n);
	const labelKeys = new Set();
	let labels = 0;
	prof.sample.forEach((s, i) => {
		if (s.value.length !== sampleTypes.length) {
			errors.push(`sample ${i}: ${s.value.length} values for ${sampleTypes.length} types`);
		}
		s.value.forEach((v, j) => {
			if (j < totals.length) totals[j] += int64(v);
		});
		for (const id of s.locationId) {
			if (!locations.has(Number(id))) errors.push(`sample ${i}: unknown location ${id}`);
		}
		for (const l of s.label) {
			labelKeys.add(str(l.key, 'label key'));
			if (l.str) str(l.str, 'label str');
			if (l.numUnit) str(l.numUnit, 'label num_unit');
			labels++;
		}
	});

	const summary = {
		sample_types: sampleTypes,
		default_sample_type: prof.defaultSampleType ? str(prof.defaultSampleType, 'default') : null,
		period_type: prof.periodType ? valueType(prof.periodType, 'period_type') : null,
		period: jsonNumber(int64(prof.period)),
		time_nanos: jsonNumber(int64(prof.timeNanos)),
		duration_nanos: jsonNumber(int64(prof.durationNanos)),
		samples: prof.sample.length,
		locations: prof.location.length,
		functions: prof.function.length,
		mappings: prof.mapping.length,
		strings: strings.length,
		lines,
		inlined_locations: inlined,
		labels,
		totals: Object.fromEntries(
			sampleTypes.map((vt, j) => [`${vt.type}/${vt.unit}`, jsonNumber(totals[j])])
		),
		label_keys: [...labelKeys].sort(),
		comments: (prof.comment || []).map((c) => str(c, 'comment')),
		mapping_files: prof.mapping.map((m) => str(m.filename, 'mapping filename')),
		function_names: [...new Set(prof.function.map((f) => str(f.name, 'function name')))].sort(),
		errors,
	};
	process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
	return errors.length ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));

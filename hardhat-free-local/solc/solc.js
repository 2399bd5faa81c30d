#!/usr/bin/env node
// A stand-in for the native `solc` binary, backed by the pinned npm package `solc` (solc-js).
//
// py-solc-x can only run a native compiler, and it cannot download one here; the `solcjs` CLI
// prints a non-JSON line before its Standard JSON output, which py-solc-x cannot parse. This
// wrapper speaks the subset of the native CLI that py-solc-x's compile_standard() uses:
//
//   solc.js --version
//   solc.js --standard-json [--base-path P] [--include-path P]... [--allow-paths P,...] [FILE|-]
//
// Imports are resolved from the base path (default: the repository root) and then from the
// include paths (default: hardhat-free-local/node_modules, so '@openzeppelin/...' works). Both
// defaults come from this script's location, never from the current directory.
'use strict';

const fs = require('fs');
const path = require('path');

const NODE_MODULES = path.resolve(__dirname, '..', 'node_modules');
const REPO_ROOT = path.resolve(__dirname, '..', '..');
const USAGE_ERROR = 2;

const USAGE = `solc.js: the solc-js compiler behind the native solc command line (subset)

Usage:
  solc.js --version
  solc.js --standard-json [--base-path P] [--include-path P]... [--allow-paths P,...] [FILE|-]

Options:
  --version              Print the compiler version and exit.
  --help                 Print this help and exit.
  --standard-json        Read Standard JSON input from FILE or stdin, write the output to stdout.
  --base-path P          Resolve imports relative to P first (default: the repository root).
  --include-path P       Also resolve imports relative to P; repeatable
                         (default: hardhat-free-local/node_modules).
  --allow-paths P,...    Further directories that imports given as absolute paths may read.
`;

class UsageError extends Error {}

// Options that take a value, and whether they may be repeated.
const VALUE_OPTIONS = { '--base-path': false, '--include-path': true, '--allow-paths': true };
const FLAG_OPTIONS = new Set(['--version', '--help', '--standard-json']);
// Known to the native CLI but meaningless for Standard JSON output on stdout.
const UNSUPPORTED_OPTIONS = new Set(['--output-dir', '-o', '--overwrite', '--combined-json']);

function parseArgs(argv) {
  const opts = { flags: new Set(), '--include-path': [], '--allow-paths': [], positional: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-' || !arg.startsWith('-')) {
      opts.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    if (FLAG_OPTIONS.has(name) && name === arg) {
      opts.flags.add(name);
    } else if (name in VALUE_OPTIONS) {
      let value;
      if (name !== arg) value = arg.slice(eq + 1);
      else if (i + 1 < argv.length) value = argv[++i];
      else throw new UsageError(`the option '${name}' requires an argument`);
      if (VALUE_OPTIONS[name]) opts[name].push(value);
      else if (opts[name] !== undefined) throw new UsageError(`'${name}' given twice`);
      else opts[name] = value;
    } else if (UNSUPPORTED_OPTIONS.has(name)) {
      throw new UsageError(
        `the option '${name}' is not supported by this wrapper: it writes Standard JSON ` +
        'output to stdout only (use --standard-json)');
    } else {
      // Same first words as native solc, so py-solc-x reports it as UnknownOption.
      throw new UsageError(`unrecognised option '${arg}'`);
    }
  }
  if (opts.positional.length > 1) {
    throw new UsageError(`at most one input file, got: ${opts.positional.join(' ')}`);
  }
  return opts;
}

function isInside(file, dir) {
  const rel = path.relative(dir, file);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);
}

function makeImportCallback(basePath, includePaths, allowPaths) {
  const searchRoots = [basePath, ...includePaths];
  const allowedRoots = [...searchRoots, ...allowPaths];
  return function findImports(sourceUnitName) {
    const tried = [];
    for (const root of searchRoots) {
      // path.resolve normalises '..', so a name cannot climb out of the allowed directories.
      const candidate = path.resolve(root, sourceUnitName);
      if (!allowedRoots.some((dir) => isInside(candidate, dir))) continue;
      tried.push(candidate);
      let stat;
      try {
        stat = fs.statSync(candidate);
      } catch {
        continue;
      }
      if (!stat.isFile()) continue;
      try {
        return { contents: fs.readFileSync(candidate, 'utf8') };
      } catch (e) {
        return { error: `cannot read ${candidate}: ${e.message}` };
      }
    }
    if (tried.length === 0) {
      return { error: `outside the allowed directories: ${allowedRoots.join(', ')}` };
    }
    return { error: `no such file; tried ${tried.join(', ')}` };
  };
}

function loadCompiler() {
  // Emscripten output must never reach stdout, which carries only the JSON document.
  console.log = console.error;
  console.info = console.error;
  const solc = require(path.join(NODE_MODULES, 'solc'));
  // Emscripten installs an uncaughtException handler that hides the real error (as solcjs does,
  // drop it).
  process.removeAllListeners('uncaughtException');
  return solc;
}

function main(argv) {
  let opts;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\nRun 'solc.js --help' for the supported options.\n`);
    return USAGE_ERROR;
  }
  if (opts.flags.has('--help')) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (opts.flags.has('--version')) {
    const solc = loadCompiler();
    // Exactly the two lines native solc prints; py-solc-x parses the version from them.
    process.stdout.write(
      `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return 0;
  }
  if (!opts.flags.has('--standard-json')) {
    process.stderr.write(
      'only Standard JSON mode is supported: pass --standard-json (see --help)\n');
    return USAGE_ERROR;
  }

  const inputFile = opts.positional[0];
  let input;
  try {
    input = fs.readFileSync(inputFile === undefined || inputFile === '-' ? 0 : inputFile, 'utf8');
  } catch (e) {
    process.stderr.write(`cannot read the Standard JSON input: ${e.message}\n`);
    return 1;
  }
  const basePath = path.resolve(opts['--base-path'] ?? REPO_ROOT);
  const includePaths = opts['--include-path'].length
    ? opts['--include-path'].map((p) => path.resolve(p))
    : [NODE_MODULES];
  const allowPaths = opts['--allow-paths']
    .flatMap((list) => list.split(','))
    .filter((p) => p !== '')
    .map((p) => path.resolve(p));

  const solc = loadCompiler();
  // Like native solc: compiler errors are reported inside the JSON output with exit code 0.
  const output = solc.compile(input, {
    import: makeImportCallback(basePath, includePaths, allowPaths),
  });
  process.stdout.write(output.endsWith('\n') ? output : `${output}\n`);
  return 0;
}

try {
  // exitCode instead of process.exit(): let stdout drain completely.
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`solc.js: internal error: ${e && e.stack ? e.stack : e}\n`);
  process.exitCode = 1;
}

// Command-line plumbing shared by the interop scripts (di.mjs, vc.mjs): usage errors exit 2
// with a message naming the script, `--name value` pairs, JSON input read strictly.
export function cli(script) {
  function fail(message) {
    process.stderr.write(`${script}: ${message}\n`);
    process.exit(2);
  }

  function options(argv) {
    const out = {};
    for(let i = 0; i < argv.length; i += 2) {
      if(!argv[i].startsWith('--') || argv[i + 1] === undefined) {
        fail(`bad argument ${argv[i]}`);
      }
      out[argv[i].slice(2)] = argv[i + 1];
    }
    return out;
  }

  function readJson(text, what) {
    try {
      return JSON.parse(text);
    } catch(error) {
      fail(`${what} is not JSON: ${error.message}`);
    }
  }

  return {fail, options, readJson};
}

// Signs or verifies a W3C Data Integrity proof with the Digital Bazaar reference libraries
// (jsonld-signatures, @digitalbazaar/data-integrity and the eddsa-jcs-2022 / ecdsa-jcs-2019 /
// eddsa-rdfc-2022 cryptosuites), so that tests can check the Python implementation against
// them.
//
//   node interop/di.mjs sign   --suite SUITE --key KEY.json [--contexts C.json] < doc.json
//   node interop/di.mjs verify               --key KEY.json [--contexts C.json] < signed.json
//   node interop/di.mjs keygen --type Ed25519|P-256|P-384 --id VM_ID --controller URL
//   node interop/di.mjs canonize [--contexts C.json] < document.json  > canonical.nq
//
// KEY.json is a Multikey verification method: {id, controller, publicKeyMultibase} plus
// secretKeyMultibase for signing. `verify` prints {"verified": true|false, "error": "..."} and
// exits 0 when the proof verifies, 1 when it does not. `canonize` prints the RDFC-1.0 canonical
// N-Quads that eddsa-rdfc-2022 hashes (the cryptosuite's own canonize: safe mode, no base), or
// exits 1 with the reason on stderr. Usage and input errors exit 2.
//
// The document loader never touches the network: it answers the verification method itself
// and the JSON-LD contexts bundled in verifier/contexts (contexts.mjs, the same files the Python
// verifier loads), plus those of --contexts (a JSON object URL -> context document), and
// refuses every other URL.
import {readFileSync} from 'node:fs';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import * as EcdsaMultikey from '@digitalbazaar/ecdsa-multikey';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as ecdsaJcs2019 from '@digitalbazaar/ecdsa-jcs-2019-cryptosuite';
import * as eddsaJcs2022 from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import * as eddsaRdfc2022 from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import jsigs from 'jsonld-signatures';
import {bundledDocumentLoader} from './contexts.mjs';
import {cli} from './cli.mjs';

const {purposes: {AssertionProofPurpose}} = jsigs;
const SUITES = {
  'eddsa-jcs-2022': eddsaJcs2022,
  'ecdsa-jcs-2019': ecdsaJcs2019,
  'eddsa-rdfc-2022': {
    // The RDFC cryptosuite is one object for signing and verifying.
    createSignCryptosuite: () => eddsaRdfc2022.cryptosuite,
    createVerifyCryptosuite: () => eddsaRdfc2022.cryptosuite,
  },
};

const {fail, options, readJson} = cli('di.mjs');

async function importKey(method) {
  // P-256/P-384 Multikeys start with zDn / z82; Ed25519 with z6Mk.
  const factory = method.publicKeyMultibase?.startsWith('z6Mk') ?
    Ed25519Multikey : EcdsaMultikey;
  return factory.from({type: 'Multikey', ...method});
}

function loaderFor(method, args) {
  const extra = args.contexts ?
    Object.entries(readJson(readFileSync(args.contexts, 'utf8'), 'contexts')) : [];
  const publicMethod = {
    '@context': 'https://w3id.org/security/multikey/v1',
    type: 'Multikey',
    id: method.id,
    controller: method.controller,
    publicKeyMultibase: method.publicKeyMultibase,
  };
  return bundledDocumentLoader(new Map([...extra, [method.id, publicMethod]]));
}

function purposeFor(method) {
  // The controller document is given here rather than loaded: it authorises exactly this
  // verification method for assertions.
  return new AssertionProofPurpose({
    controller: {
      '@context': 'https://www.w3.org/ns/did/v1',
      id: method.controller,
      assertionMethod: [method.id],
    },
  });
}

async function sign(args, input) {
  const module = SUITES[args.suite] ?? fail(`unknown suite ${args.suite}`);
  const method = readJson(readFileSync(args.key, 'utf8'), 'key');
  const keyPair = await importKey(method);
  const suite = new DataIntegrityProof({
    signer: keyPair.signer(), cryptosuite: module.createSignCryptosuite(),
    ...(args.created ? {date: args.created} : {}),
  });
  const signed = await jsigs.sign(readJson(input, 'document'), {
    suite, purpose: purposeFor(method), documentLoader: loaderFor(method, args),
  });
  process.stdout.write(JSON.stringify(signed));
}

async function verify(args, input) {
  const method = readJson(readFileSync(args.key, 'utf8'), 'key');
  const document = readJson(input, 'document');
  const suite = Object.values(SUITES).map(module => new DataIntegrityProof({
    cryptosuite: module.createVerifyCryptosuite(),
  }));
  const result = await jsigs.verify(document, {
    suite, purpose: purposeFor(method), documentLoader: loaderFor(method, args),
  });
  const error = result.error ?
    [result.error, ...(result.error.errors ?? [])].map(e => e.message).join('; ') : null;
  process.stdout.write(JSON.stringify({verified: result.verified, error}));
  process.exit(result.verified ? 0 : 1);
}

async function canonize(args, input) {
  const extra = args.contexts ?
    Object.entries(readJson(readFileSync(args.contexts, 'utf8'), 'contexts')) : [];
  try {
    process.stdout.write(await eddsaRdfc2022.cryptosuite.canonize(readJson(input, 'document'), {
      documentLoader: bundledDocumentLoader(new Map(extra)),
    }));
  } catch(error) {
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

async function keygen(args) {
  const factory = args.type === 'Ed25519' ? Ed25519Multikey : EcdsaMultikey;
  const keyPair = await factory.generate({
    id: args.id, controller: args.controller,
    ...(args.type === 'Ed25519' ? {} : {curve: args.type}),
  });
  const exported = await keyPair.export({publicKey: true, secretKey: true});
  process.stdout.write(JSON.stringify(exported));
}

const [command, ...rest] = process.argv.slice(2);
const args = options(rest);
const commands = {sign, verify, keygen, canonize};
if(!(command in commands)) {
  fail('usage: di.mjs sign|verify|keygen|canonize --option value ...');
}
const input = command === 'keygen' ? '' : readFileSync(0, 'utf8');
await commands[command](args, input);

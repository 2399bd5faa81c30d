// Signs or verifies a W3C Data Integrity proof with the Digital Bazaar reference libraries
// (jsonld-signatures, @digitalbazaar/data-integrity and the eddsa-jcs-2022 / ecdsa-jcs-2019
// cryptosuites), so that tests can check the Python implementation against them.
//
//   node interop/di.mjs sign   --suite SUITE --key KEY.json  < document.json  > signed.json
//   node interop/di.mjs verify               --key KEY.json  < signed.json
//   node interop/di.mjs keygen --type Ed25519|P-256|P-384 --id VM_ID --controller URL
//
// KEY.json is a Multikey verification method: {id, controller, publicKeyMultibase} plus
// secretKeyMultibase for signing. `verify` prints {"verified": true|false, "error": "..."} and
// exits 0 when the proof verifies, 1 when it does not. Usage and input errors exit 2.
//
// The document loader never touches the network: it answers the verification method itself
// and the contexts shipped in the npm packages, and refuses every other URL.
import {readFileSync} from 'node:fs';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import * as EcdsaMultikey from '@digitalbazaar/ecdsa-multikey';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as ecdsaJcs2019 from '@digitalbazaar/ecdsa-jcs-2019-cryptosuite';
import * as eddsaJcs2022 from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import {contexts as credentialsContexts} from '@digitalbazaar/credentials-context';
import {contexts as dataIntegrityContexts} from '@digitalbazaar/data-integrity-context';
import jsigs from 'jsonld-signatures';

const {purposes: {AssertionProofPurpose}} = jsigs;
const SUITES = {
  'eddsa-jcs-2022': eddsaJcs2022,
  'ecdsa-jcs-2019': ecdsaJcs2019,
};

function fail(message) {
  process.stderr.write(`di.mjs: ${message}\n`);
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

async function importKey(method) {
  // P-256/P-384 Multikeys start with zDn / z82; Ed25519 with z6Mk.
  const factory = method.publicKeyMultibase?.startsWith('z6Mk') ?
    Ed25519Multikey : EcdsaMultikey;
  return factory.from({type: 'Multikey', ...method});
}

function loaderFor(method) {
  const documents = new Map([...credentialsContexts, ...dataIntegrityContexts]);
  const publicMethod = {
    '@context': 'https://w3id.org/security/multikey/v1',
    type: 'Multikey',
    id: method.id,
    controller: method.controller,
    publicKeyMultibase: method.publicKeyMultibase,
  };
  documents.set(method.id, publicMethod);
  return async url => {
    const document = documents.get(url);
    if(document === undefined) {
      throw new Error(`offline document loader: ${url} is not bundled`);
    }
    return {contextUrl: null, documentUrl: url, document};
  };
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
    suite, purpose: purposeFor(method), documentLoader: loaderFor(method),
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
    suite, purpose: purposeFor(method), documentLoader: loaderFor(method),
  });
  const error = result.error ?
    [result.error, ...(result.error.errors ?? [])].map(e => e.message).join('; ') : null;
  process.stdout.write(JSON.stringify({verified: result.verified, error}));
  process.exit(result.verified ? 0 : 1);
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
const commands = {sign, verify, keygen};
if(!(command in commands)) {
  fail('usage: di.mjs sign|verify|keygen --option value ...');
}
const input = command === 'keygen' ? '' : readFileSync(0, 'utf8');
await commands[command](args, input);

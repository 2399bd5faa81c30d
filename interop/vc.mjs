// Issues, presents or verifies Verifiable Credentials with the W3C reference JavaScript
// implementation (@digitalbazaar/vc with DataIntegrityProof and the eddsa-jcs-2022,
// ecdsa-jcs-2019 and eddsa-rdfc-2022 cryptosuites), resolving issuer did:web DIDs through a
// running microcred-anchor service, so that tests can check what a standard verifier makes of
// the service's credentials and what the service makes of the reference implementation's.
//
//   node interop/vc.mjs verify --base-url URL --did-host HOST     < credential.json
//   node interop/vc.mjs status --base-url URL --did-host HOST     < credential.json
//   node interop/vc.mjs issue  --suite SUITE --key KEY.json       < credential.json
//   node interop/vc.mjs present --key KEY.json [--challenge C] [--domain D] < presentation.json
//   node interop/vc.mjs holder-key                                  (a fresh did:key, Ed25519)
//
// `verify` resolves `did:web:<HOST>:...` through `URL` (http://127.0.0.1:PORT of the test's
// service stands for https://HOST), prints {"verified": true|false, "error": "..."} and exits
// 0 when the credential verifies, 1 when it does not. A credential with `credentialStatus`
// has its BitstringStatusListEntry entries checked by @digitalbazaar/vc-bitstring-status-list
// (the status list credential fetched, its proof and issuer checked, the bit read): one whose
// revocation or suspension bit is set does not verify. `status` runs that check alone
// (checkStatus) and prints {"verified": ..., "error": ..., "revocation": true|false,
// "suspension": true|false} (a purpose the credential has no entry for is left out), exiting
// 0 when the status could be read, 1 when not. KEY.json is a Multikey verification method
// {id, controller, publicKeyMultibase, secretKeyMultibase}. Usage errors exit 2.
//
// The document loader never touches the internet: JSON-LD contexts come from the files of
// verifier/contexts (interop/contexts.mjs reads them, checked against manifest.json's
// SHA-256), did:web documents and https://HOST/... documents (status list credentials) from
// the service named by --base-url, did:key documents are computed; every other URL is refused.
import {readFileSync} from 'node:fs';
import * as vc from '@digitalbazaar/vc';
import {checkStatus} from '@digitalbazaar/vc-bitstring-status-list';
import {DataIntegrityProof} from '@digitalbazaar/data-integrity';
import * as EcdsaMultikey from '@digitalbazaar/ecdsa-multikey';
import * as Ed25519Multikey from '@digitalbazaar/ed25519-multikey';
import * as ecdsaJcs2019 from '@digitalbazaar/ecdsa-jcs-2019-cryptosuite';
import * as eddsaJcs2022 from '@digitalbazaar/eddsa-jcs-2022-cryptosuite';
import {cryptosuite as eddsaRdfc2022} from '@digitalbazaar/eddsa-rdfc-2022-cryptosuite';
import {bundledContexts} from './contexts.mjs';
import {cli} from './cli.mjs';

const MULTIKEY_CONTEXT = 'https://w3id.org/security/multikey/v1';
const DID_CONTEXT = 'https://www.w3.org/ns/did/v1';

const {fail, options, readJson} = cli('vc.mjs');

function signSuite(name) {
  // eddsa-jcs-2022 and ecdsa-jcs-2019 export factories; eddsa-rdfc-2022 one cryptosuite.
  const suites = {
    'eddsa-jcs-2022': () => eddsaJcs2022.createSignCryptosuite(),
    'ecdsa-jcs-2019': () => ecdsaJcs2019.createSignCryptosuite(),
    'eddsa-rdfc-2022': () => eddsaRdfc2022,
  };
  return (suites[name] ?? fail(`unknown suite ${name}`))();
}

function verifySuites() {
  return [
    eddsaJcs2022.createVerifyCryptosuite(),
    ecdsaJcs2019.createVerifyCryptosuite(),
    eddsaRdfc2022,
  ].map(cryptosuite => new DataIntegrityProof({cryptosuite}));
}

async function importKey(method) {
  // P-256 Multikeys start with zDn; Ed25519 with z6Mk.
  const factory = method.publicKeyMultibase?.startsWith('z6Mk') ?
    Ed25519Multikey : EcdsaMultikey;
  return factory.from({type: 'Multikey', ...method});
}

// did:web (did:web method specification, "Read"): the first segment is the host (%3A: a
// port), each further segment a path segment; no path means /.well-known.
function didWebUrl(did, args) {
  const segments = did.slice('did:web:'.length).split(':');
  const host = decodeURIComponent(segments[0]);
  if(host !== args['did-host']) {
    throw new Error(`offline document loader: ${did} is not on ${args['did-host']}`);
  }
  const path = segments.length > 1 ? segments.slice(1).join('/') : '.well-known';
  return `${args['base-url']}/${path}/did.json`;
}

function didKeyDocument(did) {
  const multibase = did.slice('did:key:'.length);
  const id = `${did}#${multibase}`;
  return {
    '@context': [DID_CONTEXT, MULTIKEY_CONTEXT],
    id: did,
    verificationMethod: [{id, type: 'Multikey', controller: did, publicKeyMultibase: multibase}],
    authentication: [id],
    assertionMethod: [id],
  };
}

// One fetch per URL and run, shared by concurrent loads (checkStatus checks both status
// entries at once), as a resolver's cache would.
function fetchedJson(fetched, url, what, headers) {
  if(!fetched.has(url)) {
    fetched.set(url, (async () => {
      const response = await fetch(url, {headers});
      if(!response.ok) {
        throw new Error(`${what}: HTTP ${response.status} ${await response.text()}`);
      }
      return response.json();
    })());
  }
  return fetched.get(url);
}

function documentLoaderFor(args) {
  const contexts = bundledContexts();
  const fetched = new Map();
  return async url => {
    if(contexts.has(url)) {
      return {contextUrl: null, documentUrl: url, document: structuredClone(contexts.get(url))};
    }
    const onHost = `https://${args['did-host']}/`;
    if(args['base-url'] && url.startsWith(onHost)) {
      // A document the service publishes (a status list credential): fetched from it.
      const document = await fetchedJson(fetched,
        `${args['base-url']}/${url.slice(onHost.length)}`, url,
        {accept: 'application/vc, application/json'});
      return {contextUrl: null, documentUrl: url, document: structuredClone(document)};
    }
    const [did, fragment] = url.split('#');
    let document;
    if(did.startsWith('did:web:') && args['base-url']) {
      document = structuredClone(await fetchedJson(fetched, didWebUrl(did, args),
        `did:web ${did}`, {accept: 'application/did+json'}));
    } else if(did.startsWith('did:key:')) {
      document = didKeyDocument(did);
    } else {
      throw new Error(`offline document loader: ${url} is not bundled`);
    }
    if(document.id !== did) {
      throw new Error(`DID document of ${did} names itself ${document.id}`);
    }
    if(fragment === undefined) {
      return {contextUrl: null, documentUrl: url, document};
    }
    const method = (document.verificationMethod ?? []).find(m => m.id === url);
    if(method === undefined) {
      throw new Error(`verification method ${url} is not in the DID document of ${did}`);
    }
    return {contextUrl: null, documentUrl: url,
      document: {'@context': MULTIKEY_CONTEXT, ...method}};
  };
}

function errorText(result) {
  const errors = [];
  const collect = value => {
    if(!value) {
      return;
    }
    if(Array.isArray(value)) {
      value.forEach(collect);
      return;
    }
    if(value.message) {
      errors.push(value.message);
    }
    collect(value.errors);
  };
  collect(result.error);
  for(const r of result.results ?? []) {
    collect(r.error);
  }
  for(const r of result.credentialResults ?? []) {
    collect(r.error);
  }
  collect(result.presentationResult?.error);
  return errors.length ? [...new Set(errors)].join('; ') : null;
}

// The statuses set in a checkStatus result: a relying party refuses a revoked or suspended
// credential (the library reports the bits and leaves that to it).
function setStatuses(statusResult) {
  return (statusResult?.results ?? [])
    .filter(r => r.status === true)
    .map(r => `the credential's ${r.credentialStatus.statusPurpose} status is set ` +
      `(${r.credentialStatus.statusListCredential} index ` +
      `${r.credentialStatus.statusListIndex})`);
}

async function verify(args, input) {
  const credential = readJson(input, 'credential');
  let result;
  try {
    result = await vc.verifyCredential({
      credential, suite: verifySuites(), documentLoader: documentLoaderFor(args), checkStatus,
    });
  } catch(error) {
    result = {verified: false, error};
  }
  const set = result.verified ? setStatuses(result.statusResult) : [];
  const verified = result.verified && set.length === 0;
  process.stdout.write(JSON.stringify({
    verified, error: set.length ? set.join('; ') : errorText(result)}));
  process.exit(verified ? 0 : 1);
}

async function status(args, input) {
  const credential = readJson(input, 'credential');
  const result = await checkStatus({
    credential, suite: verifySuites(), documentLoader: documentLoaderFor(args),
    verifyBitstringStatusListCredential: true, verifyMatchingIssuers: true,
  });
  const out = {verified: result.verified, error: errorText(result)};
  for(const r of result.results ?? []) {
    out[r.credentialStatus.statusPurpose] = r.status;
  }
  process.stdout.write(JSON.stringify(out));
  process.exit(result.verified ? 0 : 1);
}

async function issue(args, input) {
  const method = readJson(readFileSync(args.key, 'utf8'), 'key');
  const keyPair = await importKey(method);
  const suite = new DataIntegrityProof({
    signer: keyPair.signer(), cryptosuite: signSuite(args.suite ?? 'eddsa-jcs-2022'),
  });
  const signed = await vc.issue({
    credential: readJson(input, 'credential'), suite,
    documentLoader: documentLoaderFor(args),
  });
  process.stdout.write(JSON.stringify(signed));
}

async function present(args, input) {
  const method = readJson(readFileSync(args.key, 'utf8'), 'key');
  const keyPair = await importKey(method);
  const suite = new DataIntegrityProof({
    signer: keyPair.signer(), cryptosuite: signSuite(args.suite ?? 'eddsa-jcs-2022'),
  });
  const signed = await vc.signPresentation({
    presentation: readJson(input, 'presentation'), suite,
    challenge: args.challenge, domain: args.domain,
    documentLoader: documentLoaderFor(args),
  });
  process.stdout.write(JSON.stringify(signed));
}

async function holderKey() {
  const keyPair = await Ed25519Multikey.generate();
  const did = `did:key:${keyPair.publicKeyMultibase}`;
  keyPair.id = `${did}#${keyPair.publicKeyMultibase}`;
  keyPair.controller = did;
  const exported = await keyPair.export({publicKey: true, secretKey: true});
  process.stdout.write(JSON.stringify(exported));
}

const [command, ...rest] = process.argv.slice(2);
const args = options(rest);
const commands = {verify, status, issue, present, 'holder-key': holderKey};
if(!(command in commands)) {
  fail('usage: vc.mjs verify|status|issue|present|holder-key --option value ...');
}
const input = command === 'holder-key' ? '' : readFileSync(0, 'utf8');
await commands[command](args, input);

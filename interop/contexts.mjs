// The JSON-LD contexts bundled with the verifier package (verifier/contexts/, listed in its
// manifest.json with URL, file and SHA-256), served to the Digital Bazaar libraries by a
// document loader that never touches the network. The Python side (verifier/jsonld.py) loads
// the same files, so both implementations canonicalise against the same bytes.
//
//   import {bundledContexts, bundledDocumentLoader} from './contexts.mjs';
//   const documentLoader = bundledDocumentLoader(new Map([[url, document], ...]));
import {createHash} from 'node:crypto';
import {readFileSync} from 'node:fs';

const FOLDER = new URL('../verifier/contexts/', import.meta.url);

// URL -> parsed context document; each file is checked against its SHA-256 in the manifest.
export function bundledContexts() {
  const manifest = JSON.parse(readFileSync(new URL('manifest.json', FOLDER), 'utf8'));
  const contexts = new Map();
  for(const {url, file, sha256} of manifest.contexts) {
    const bytes = readFileSync(new URL(file, FOLDER));
    const digest = createHash('sha256').update(bytes).digest('hex');
    if(digest !== sha256) {
      throw new Error(`bundled context ${file} does not match its SHA-256 in manifest.json`);
    }
    contexts.set(url, JSON.parse(bytes.toString('utf8')));
  }
  return contexts;
}

// A jsonld.js document loader answering the bundled contexts plus `extra` (a Map of URL ->
// document, e.g. a verification method), and refusing every other URL.
export function bundledDocumentLoader(extra = new Map()) {
  const documents = new Map([...bundledContexts(), ...extra]);
  return async url => {
    const document = documents.get(url);
    if(document === undefined) {
      throw new Error(`offline document loader: ${url} is not bundled`);
    }
    return {contextUrl: null, documentUrl: url, document: structuredClone(document)};
  };
}

"""Court exhibit bundles: a BagIt bag (RFC 8493) carrying the exhibits, their custody
history with proofs against one signed checkpoint, RFC 3161 tokens, a certificate for
people, and an organisation's detached signature over the tag manifests.

The modules: `layout` (where everything lives in the bag), `model` (the exhibit records),
`bagit` (manifest and tag-file text), `writer` (streams a bag into a zip), `organisation`
(the detached signature), `documents` (exhibits.csv, VERIFY.md, the narrative),
`certificate` (the PDF), and `verify` (checks a bag offline, integrity apart from trust).
"""
